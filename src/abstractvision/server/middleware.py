"""ASGI middleware: the request body limit (413) and one access-log line per request.

Both are plain ASGI (not Starlette's ``BaseHTTPMiddleware``) so streaming responses and client
disconnects pass through untouched.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

access_log = logging.getLogger("abstractvision.server.access")


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes with OpenAI's error object and 413, by the declared
    length up front and by counting what arrives (a chunked body declares none)."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _send_413(send, self.limit)
            return
        received = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _send_413(send, self.limit)


class _TooLarge(Exception):
    pass


async def _send_413(send: Any, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "message": f"request body over this server's limit of {limit} bytes",
                "type": "invalid_request_error",
                "param": None,
                "code": "body_too_large",
            }
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AccessLogMiddleware:
    """``METHOD path status duration_ms [job=ID]``: never a header (keys), never a body (prompts).

    The job is the one the request made (routes put it in ``request.state.job_id``) or the one
    its path names (``/v1/jobs/{job_id}``, ``/v1/videos/{video_id}``).
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            params = scope.get("path_params") or {}
            job = scope.get("state", {}).get("job_id") or params.get("job_id") or params.get("video_id")
            access_log.info(
                "%s %s %s %.1fms%s",
                scope["method"],
                scope["path"],
                status or "-",
                (time.perf_counter() - started) * 1000,
                f" job={job}" if job else "",
            )


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


__all__ = ["AccessLogMiddleware", "BodyLimitMiddleware"]
