"""Server-sent events: one event per ``data:`` line of JSON, named by its ``type``.

The official OpenAI SDK reads the JSON of each ``data:`` line (and the ``type`` inside it) for
image streaming; browsers' ``EventSource`` dispatches on ``event:``. Both are written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

#: Sent while nothing happens, so proxies keep the connection and a gone client is noticed.
KEEPALIVE = b": keepalive\n\n"

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(payload: dict[str, Any]) -> bytes:
    name = str(payload.get("type", "message")).replace("\n", " ")
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


async def listen(listener: asyncio.Queue, keepalive_s: float = 10.0) -> AsyncIterator[dict[str, Any] | None]:
    """A job listener's events until its end; ``None`` when ``keepalive_s`` passed without one (send
    :data:`KEEPALIVE` then), so every stream of job events keeps its connection the same way."""
    while True:
        try:
            event = await asyncio.wait_for(listener.get(), timeout=keepalive_s)
        except asyncio.TimeoutError:
            yield None
            continue
        if event is None:
            return
        yield event


__all__ = ["HEADERS", "KEEPALIVE", "listen", "sse_event"]
