"""HTTP transport for remote backends: one pooled client, bounded bodies, retries, typed errors.

Why the shape: the request logic of a backend is written once, as a generator that *yields*
:class:`HttpCall` (send this) and :class:`Wait` (sleep this long) and receives the
:class:`HttpResponse`; :meth:`HttpTransport.drive` runs it with ``httpx.Client`` and
:meth:`HttpTransport.adrive` with ``httpx.AsyncClient``. Only sending and sleeping differ between
sync and async, so only they are written twice.

The retry policy is pure (:func:`should_retry`, :func:`retry_delay`, beside their constants) so it is
tested without a server and shared by both paths.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import threading
import time
import weakref
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    AbstractVisionError,
    InvalidProviderResponseError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    RequestTimeoutError,
)

# ---- policy ----------------------------------------------------------------------------------
#: Connecting should be quick even when generating is slow.
CONNECT_TIMEOUT_S = 5.0
#: First backoff delay; doubles per attempt up to MAX_RETRY_DELAY_S, minus up to 25 % jitter.
INITIAL_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0
#: A server asking for a longer wait than this fails at once instead of stalling the caller.
MAX_RETRY_AFTER_S = 120.0
#: 4xx statuses worth retrying (timeout, conflict, rate limit); every 5xx is retried too.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
#: Largest error body kept for messages.
MAX_ERROR_BODY_BYTES = 64 * 1024
#: Plain answers that declare at most this many bytes are read in one go (the hot path).
READ_AT_ONCE_BYTES = 1024 * 1024
#: Keep-alive pool: enough for a 16-thread batch without reconnecting.
MAX_CONNECTIONS = 64
#: Endpoint URLs kept parsed per transport (the generation, edit, models and video paths, and a few more).
MAX_PARSED_URLS = 32


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms``, then ``Retry-After`` seconds or date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an answer with ``status`` may succeed when sent again (never other 4xx)."""
    lowered = {k.lower(): v.lower() for k, v in headers.items()}
    if lowered.get("x-should-retry") in ("true", "false"):
        return lowered["x-should-retry"] == "true"
    return status in RETRYABLE_STATUSES or status >= 500


def retry_delay(attempt: int, headers: Mapping[str, str], jitter: Callable[[], float] = random.random) -> float | None:
    """Seconds to wait before retry number ``attempt + 1``; ``None`` when the server asked too much.

    A server-requested wait is honoured as is; otherwise exponential backoff with jitter.
    """
    asked = parse_retry_after(headers)
    if asked is not None:
        return asked if asked <= MAX_RETRY_AFTER_S else None
    backoff = min(INITIAL_RETRY_DELAY_S * 2**attempt, MAX_RETRY_DELAY_S)
    return backoff * (1 - 0.25 * jitter())


# ---- what a backend's request logic yields ---------------------------------------------------
# Plain slotted dataclasses, not frozen ones: two of each are built per request on the hot path,
# and a frozen dataclass's __init__ costs several times more. Nothing mutates them after creation.
@dataclass(slots=True)
class HttpCall:
    """One request. ``url`` is absolute. ``on_event`` turns on Server-Sent Events parsing."""

    method: str
    url: str
    json: Any = None
    data: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    authenticated: bool = True
    on_event: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str
    elapsed_s: float
    events: tuple[dict[str, Any], ...] = ()

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidProviderResponseError(
                f"{self.url} answered {self.status} with a body that is not JSON ({exc}): {_excerpt(self.content)!r}",
                status=self.status,
                body=_excerpt(self.content),
            ) from None


Operation = Generator[HttpCall | Wait, HttpResponse | None, Any]


def _excerpt(content: bytes, limit: int = 300) -> str:
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
                raise InvalidProviderResponseError(f"malformed server-sent event: {_excerpt(block)!r}") from None
            if name and isinstance(event, dict):
                event.setdefault("type", name)
            events.append(event)
        return events


class _BodyReader:
    """Collects a response body within the size cap and the deadline, parsing events when asked."""

    def __init__(self, call: HttpCall, response: Any, max_bytes: int, deadline: float, timeout_s: float):
        self.call, self.max_bytes, self.deadline, self.timeout_s = call, max_bytes, deadline, timeout_s
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
            f"{self.call.url} sent {size} bytes or more, over the {self.max_bytes}-byte limit "
            "(raise max_response_bytes if this is expected)",
            status=200,
        )

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; ``False`` once an error body has been read far enough."""
        if time.monotonic() > self.deadline:
            raise RequestTimeoutError(
                f"{self.call.method} {self.call.url} took longer than timeout_s={self.timeout_s}",
                timeout_s=self.timeout_s,
            )
        self.size += len(chunk)
        if self.size > self.limit:
            if self.ok:
                raise self._too_large(self.size)
            return False
        if self.parser is not None:
            for event in self.parser.feed(chunk):
                self.events.append(event)
                self.call.on_event(event)  # type: ignore[misc]
        else:
            self.parts.append(chunk)
        return True

    def result(self, response: Any, started: float) -> HttpResponse:
        return HttpResponse(
            status=response.status_code,
            headers=response.headers,  # httpx.Headers: a case-insensitive Mapping, not copied
            content=b"".join(self.parts),
            url=self.call.url,
            elapsed_s=time.perf_counter() - started,
            events=tuple(self.events),
        )


def provider_message(content: bytes) -> str:
    """The service's own explanation from an error body (OpenAI ``error.message``, ``detail``, text)."""
    try:
        payload = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return _excerpt(content).strip()
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(error, dict):
            error = error.get("message") or error.get("code") or error
        if error:
            return str(error)
    return _excerpt(content).strip()


class HttpTransport:
    """One pooled client per backend instance (and one async client per event loop), thread-safe.

    ``headers`` go on every request to the service; ``auth_headers`` only on requests marked
    ``authenticated`` (never on downloads from other hosts). ``secret`` is scrubbed from messages.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        auth_headers: Mapping[str, str],
        timeout_s: float,
        max_retries: int,
        max_response_bytes: int,
        secret: str | None = None,
        client: Any = None,
        async_client: Any = None,
    ):
        self.headers = dict(headers)
        self._auth_headers = dict(auth_headers)
        self._authenticated_headers = {**headers, **auth_headers}
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_response_bytes = max_response_bytes
        self._secret = secret
        self._client = client
        self._owns_client = client is None
        self._async_client = async_client
        self._async_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._parsed_urls: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"HttpTransport(timeout_s={self.timeout_s}, max_retries={self.max_retries})"

    # ---- clients --------------------------------------------------------------------------------
    def _client_options(self) -> dict[str, Any]:
        import httpx

        return {
            "timeout": httpx.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s)),
            "limits": httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
            "follow_redirects": False,
            "headers": self.headers,  # on the clients we own, so requests add only what differs
        }

    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import httpx

                    self._client = httpx.Client(**self._client_options())
        return self._client

    def async_client(self) -> Any:
        """The caller's async client, else one per running event loop (a client is bound to its loop)."""
        if self._async_client is not None:
            return self._async_client
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None:
                import httpx

                client = self._async_clients[loop] = httpx.AsyncClient(**self._client_options())
        return client

    def close(self) -> None:
        """Close the clients this transport created (a caller's client stays the caller's)."""
        with self._lock:
            client, self._client = (self._client, None) if self._owns_client else (None, self._client)
            self._async_clients = weakref.WeakKeyDictionary()
        if client is not None:
            client.close()

    # ---- one attempt --------------------------------------------------------------------------------
    def _request_kwargs(self, call: HttpCall, owned: bool) -> dict[str, Any]:
        if owned:  # the client already sends self.headers
            headers = self._auth_headers if call.authenticated else {}
        else:
            headers = self._authenticated_headers if call.authenticated else self.headers
        if call.on_event is not None:
            headers = {**headers, "Accept": "text/event-stream"}
        body = {"json": call.json, "data": call.data, "files": call.files}
        return {"headers": headers, **{key: value for key, value in body.items() if value is not None}}

    def _url(self, url: str) -> Any:
        """``httpx.URL`` for ``url``, parsed once: a backend calls the same few endpoints over and over,
        and parsing a URL is about a third of what building a request costs."""
        parsed = self._parsed_urls.get(url)
        if parsed is None:
            import httpx

            parsed = httpx.URL(url)
            if len(self._parsed_urls) < MAX_PARSED_URLS:  # result downloads have one-off URLs
                self._parsed_urls[url] = parsed
        return parsed

    def _exchange(self, call: HttpCall) -> HttpResponse:
        client = self.client()
        started, deadline = time.perf_counter(), time.monotonic() + self.timeout_s
        request = client.build_request(
            call.method, self._url(call.url), **self._request_kwargs(call, self._owns_client)
        )
        response = client.send(request, stream=True)
        try:
            reader = _BodyReader(call, response, self.max_response_bytes, deadline, self.timeout_s)
            if reader.read_at_once:
                reader.feed(response.read())
            else:
                for chunk in response.iter_bytes():
                    if not reader.feed(chunk):
                        break
            return reader.result(response, started)
        finally:
            response.close()

    async def _aexchange(self, call: HttpCall) -> HttpResponse:
        client = self.async_client()
        owned = self._async_client is None
        started, deadline = time.perf_counter(), time.monotonic() + self.timeout_s
        request = client.build_request(call.method, self._url(call.url), **self._request_kwargs(call, owned))
        response = await client.send(request, stream=True)
        try:
            reader = _BodyReader(call, response, self.max_response_bytes, deadline, self.timeout_s)
            if reader.read_at_once:
                reader.feed(await response.aread())
            else:
                async for chunk in response.aiter_bytes():
                    if not reader.feed(chunk):
                        break
            return reader.result(response, started)
        finally:
            await response.aclose()

    # ---- retries: the decision is shared, only sending and sleeping differ ---------------------
    def send(self, call: HttpCall) -> HttpResponse:
        attempt = 0
        while True:
            try:
                response, failure = self._exchange(call), None
            except Exception as exc:
                response, failure = None, exc
            delay = self._next_delay(call, attempt, response, failure)
            if delay is None:
                return response  # type: ignore[return-value]
            time.sleep(delay)
            attempt += 1

    async def asend(self, call: HttpCall) -> HttpResponse:
        attempt = 0
        while True:
            try:
                response, failure = await self._aexchange(call), None
            except Exception as exc:
                response, failure = None, exc
            delay = self._next_delay(call, attempt, response, failure)
            if delay is None:
                return response  # type: ignore[return-value]
            await asyncio.sleep(delay)
            attempt += 1

    def _next_delay(
        self, call: HttpCall, attempt: int, response: HttpResponse | None, failure: BaseException | None
    ) -> float | None:
        """``None``: done, return ``response``. A number: retry after it. Otherwise raise the typed error."""
        if failure is not None:
            import httpx

            if isinstance(failure, AbstractVisionError):
                raise failure
            retryable = isinstance(failure, (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError))
            delay = retry_delay(attempt, {}) if retryable and attempt < self.max_retries else None
            if delay is None:
                raise self._transport_error(call, failure, attempt) from failure
            return delay
        assert response is not None
        if response.status < 400:
            return None
        if attempt < self.max_retries and should_retry(response.status, response.headers):
            delay = retry_delay(attempt, response.headers)
            if delay is not None:
                return delay
        raise self._status_error(call, response, attempt)

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _status_error(self, call: HttpCall, response: HttpResponse, attempt: int) -> ProviderError:
        message = self._scrub(provider_message(response.content))
        tries = f" after {attempt + 1} attempts" if attempt else ""
        error_type = RateLimitError if response.status == 429 else ProviderError
        return error_type(
            f"{call.method} {call.url} failed with HTTP {response.status}{tries}: {message}",
            status=response.status,
            provider_message=message,
            body=self._scrub(_excerpt(response.content, 2000)),
            retry_after=parse_retry_after(response.headers),
        )

    def _transport_error(self, call: HttpCall, failure: BaseException, attempt: int) -> AbstractVisionError:
        import httpx

        detail = self._scrub(str(failure) or type(failure).__name__)
        if isinstance(failure, httpx.TimeoutException) and not isinstance(failure, httpx.ConnectTimeout):
            return RequestTimeoutError(
                f"{call.method} {call.url} took longer than timeout_s={self.timeout_s} ({detail})",
                timeout_s=self.timeout_s,
            )
        tries = f" after {attempt + 1} attempts" if attempt else ""
        return ProviderConnectionError(f"could not reach {call.url}{tries}: {detail}; check base_url and the server")

    # ---- drivers ----------------------------------------------------------------------------------
    def drive(self, operation: Operation) -> Any:
        """Run a request generator synchronously; failures are thrown back into it."""
        outcome: HttpResponse | None = None
        failure: BaseException | None = None
        while True:
            try:
                step = operation.throw(failure) if failure is not None else operation.send(outcome)
            except StopIteration as stop:
                return stop.value
            outcome, failure = None, None
            try:
                if isinstance(step, Wait):
                    time.sleep(step.seconds)
                else:
                    outcome = self.send(step)
            except AbstractVisionError as exc:
                failure = exc

    async def adrive(self, operation: Operation) -> Any:
        """:meth:`drive` on the event loop, with ``httpx.AsyncClient``."""
        outcome: HttpResponse | None = None
        failure: BaseException | None = None
        while True:
            try:
                step = operation.throw(failure) if failure is not None else operation.send(outcome)
            except StopIteration as stop:
                return stop.value
            outcome, failure = None, None
            try:
                if isinstance(step, Wait):
                    await asyncio.sleep(step.seconds)
                else:
                    outcome = await self.asend(step)
            except AbstractVisionError as exc:
                failure = exc


__all__ = [
    "CONNECT_TIMEOUT_S",
    "HttpCall",
    "HttpResponse",
    "HttpTransport",
    "INITIAL_RETRY_DELAY_S",
    "MAX_RETRY_AFTER_S",
    "MAX_RETRY_DELAY_S",
    "Operation",
    "RETRYABLE_STATUSES",
    "SseParser",
    "Wait",
    "parse_retry_after",
    "provider_message",
    "should_retry",
    "retry_delay",
]
