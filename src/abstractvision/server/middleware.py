"""ASGI middleware: the API key check, the request body limit (413) and one access-log line per request.

All are plain ASGI (not Starlette's ``BaseHTTPMiddleware``) so streaming responses and client
disconnects pass through untouched. The key check and the body limit act before the app reads a
body: FastAPI parses a body before it runs a route's dependencies, so a check there would let an
unauthenticated caller make the server read (and spool) up to the body limit first.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from .auth import KeyRing
from .errors import APIError

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
        exceeded = started = False

        async def counted_receive() -> dict:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            if exceeded:  # the app's answer to a body it could not finish reading (FastAPI: a 400)
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send_413(send, self.limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            pass
        if exceeded and not started:
            await _send_413(send, self.limit)


class _TooLarge(Exception):
    pass


async def _send_413(send: Any, limit: int) -> None:
    error = APIError(413, f"request body over this server's limit of {limit} bytes", code="body_too_large")
    await send_error(send, error, close=True)


async def send_error(send: Any, error: APIError, *, close: bool = False) -> None:
    """``error`` as a complete response, OpenAI's error object (for middleware, outside FastAPI's handlers)."""
    body = json.dumps({"error": error.body}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class KeyCheckMiddleware:
    """With keys configured, a ``/v1`` request without a valid ``Authorization: Bearer`` key gets
    its 401 here, before anything reads its body. The routes still ask :class:`KeyRing` who the
    caller is (``deps.caller``); this only refuses early."""

    def __init__(self, app: Any, keys: KeyRing):
        self.app = app
        self.keys = keys

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.keys.required and scope["path"].startswith("/v1/"):
            scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
            try:
                self.keys.owner(token if scheme.lower() == "bearer" else None)
            except APIError as error:
                await send_error(send, error)
                return
        await self.app(scope, receive, send)


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


__all__ = ["AccessLogMiddleware", "BodyLimitMiddleware", "KeyCheckMiddleware", "send_error"]
