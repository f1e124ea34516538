"""Reading an HTTP answer's body: bounded in size, within the exchange's deadline, events parsed as they come.

Why its own module: the size cap, the Server-Sent Events parser and the service's error message
are about the bytes of one answer, whichever client (sync or async) read them.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidProviderResponseError
from ._http_guard import Exchange

#: Largest error body kept for messages.
MAX_ERROR_BODY_BYTES = 64 * 1024
#: Plain answers that declare at most this many bytes are read in one go (the hot path); the guarded
#: socket still holds each read to the deadline.
READ_AT_ONCE_BYTES = 1024 * 1024


def excerpt(content: bytes, limit: int = 300) -> str:
    return content[:limit].decode("utf-8", "replace")


class SseParser:
    """Incremental Server-Sent Events parser: bytes in, JSON events out (``[DONE]`` ignored)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        events = []
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            name, data = None, []
            for line in block.decode("utf-8").split("\n"):
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
            if not data or data == ["[DONE]"]:
                continue
            try:
                event = json.loads("\n".join(data))
            except ValueError:
                raise InvalidProviderResponseError(f"malformed server-sent event: {excerpt(block)!r}") from None
            if name and isinstance(event, dict):
                event.setdefault("type", name)
            events.append(event)
        return events


class BodyReader:
    """Collects a response body within the size cap and the exchange, parsing events when asked.

    ``label`` names the request in messages (its URL, passwords masked).
    """

    def __init__(self, call: Any, label: str, response: Any, max_bytes: int, exchange: Exchange):
        self.call, self.label, self.max_bytes, self.exchange = call, label, max_bytes, exchange
        self.ok = response.status_code < 400
        self.limit = max_bytes if self.ok else MAX_ERROR_BODY_BYTES
        self.parts: list[bytes] = []
        self.size = 0
        self.events: list[dict[str, Any]] = []
        sse = self.ok and call.on_event is not None and "event-stream" in response.headers.get("content-type", "")
        self.parser = SseParser() if sse else None
        declared = response.headers.get("content-length") if self.ok else None
        declared_size = int(declared) if declared and declared.isdigit() else None
        if declared_size is not None and declared_size > max_bytes:
            raise self._too_large(declared_size)
        # a small declared body is read in one go; anything else chunk by chunk against cap and deadline
        self.read_at_once = declared_size is not None and not sse and declared_size <= READ_AT_ONCE_BYTES

    def _too_large(self, size: int) -> InvalidProviderResponseError:
        return InvalidProviderResponseError(
            f"{self.label} sent {size} bytes or more, over the {self.max_bytes}-byte limit "
            "(raise max_response_bytes if this is expected)",
            status=200,
        )

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; ``False`` once an error body has been read far enough."""
        self.exchange.check()
        self.size += len(chunk)
        if self.size > self.limit:
            if self.ok:
                raise self._too_large(self.size)
            return False
        if self.parser is not None:
            for event in self.parser.feed(chunk):
                self.events.append(event)
                self.call.on_event(event)
        else:
            self.parts.append(chunk)
        return True


def provider_message(content: bytes) -> str:
    """The service's own explanation from an error body (OpenAI ``error.message``, ``detail``, text)."""
    try:
        payload = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return excerpt(content).strip()
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(error, dict):
            error = error.get("message") or error.get("code") or error
        if error:
            return str(error)
    return excerpt(content).strip()


__all__ = ["BodyReader", "MAX_ERROR_BODY_BYTES", "READ_AT_ONCE_BYTES", "SseParser", "excerpt", "provider_message"]
