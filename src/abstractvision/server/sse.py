"""Server-sent events: one event per ``data:`` line of JSON, named by its ``type``.

The official OpenAI SDK reads the JSON of each ``data:`` line (and the ``type`` inside it) for
image streaming; browsers' ``EventSource`` dispatches on ``event:``. Both are written.
"""

from __future__ import annotations

import json
from typing import Any

#: Sent while nothing happens, so proxies keep the connection and a gone client is noticed.
KEEPALIVE = b": keepalive\n\n"

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(payload: dict[str, Any]) -> bytes:
    name = str(payload.get("type", "message")).replace("\n", " ")
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


__all__ = ["HEADERS", "KEEPALIVE", "sse_event"]
