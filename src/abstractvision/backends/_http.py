"""HTTP transport for remote backends: one pooled client, one deadline per exchange, retries, typed errors.

Why the shape: the request logic of a backend is written once, as a generator that *yields*
:class:`HttpCall` (send this) and :class:`Wait` (sleep this long) and receives the
:class:`HttpResponse`; :meth:`HttpTransport.drive` runs it with ``httpx.Client`` and
:meth:`HttpTransport.adrive` with ``httpx.AsyncClient``. Only sending and sleeping differ between
sync and async: the request logic and the transport's own (retries, exchanges, waits) are plans
of I/O steps (:class:`_Attempt`, :class:`_Pause`) written once, and only making a step is
written twice.

Policies held here, whatever the server does:

* ``timeout_s`` bounds each *exchange*: a request, its retries and the waits between them, and the
  downloads of its results (calls marked ``continues``); a retry whose wait would not fit is not
  made. A :class:`Wait` of the operation (video job polling) is not part of an exchange: the next
  request starts a new one. Enforced per byte, not per read (:mod:`._http_guard`).
* The caller's cancel event stops a request while it waits for headers, reads a body or waits to
  retry (:class:`GenerationCancelledError` within :data:`~._http_guard.CANCEL_POLL_S`).
* Credentials (every header that came from configuration) go only to the service's own origin
  (scheme, host, port); other hosts get only the neutral ``User-Agent``. Redirects are not followed.
* Only transport failures become :class:`ProviderConnectionError`; anything else a callback raises
  passes through unchanged. Messages never show the API key or a password in ``base_url``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping
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
from ..progress import ProgressReporter
from ..redaction import redact_url, scrub, url_secrets
from ._http_body import BodyReader, excerpt, provider_message
from ._http_guard import Exchange, apause, current_exchange, guard_client, pause
from ._retry import parse_retry_after, retry_delay, should_retry

# ---- policy ----------------------------------------------------------------------------------
#: Connecting should be quick even when generating is slow.
CONNECT_TIMEOUT_S = 5.0
#: Keep-alive pool: enough for a 16-thread batch without reconnecting.
MAX_CONNECTIONS = 64
#: Endpoint URLs kept parsed per transport (the generation, edit, models and video paths, and a few more).
MAX_PARSED_URLS = 32
#: The only header a host other than the service's own receives.
NEUTRAL_HEADERS = {"User-Agent": "abstractvision"}
_JSON_TYPE = {"Content-Type": "application/json"}
_SSE_ACCEPT = {"Accept": "text/event-stream"}


# ---- what a backend's request logic yields ---------------------------------------------------
# Plain slotted dataclasses, not frozen ones: two of each are built per request on the hot path,
# and a frozen dataclass's __init__ costs several times more. Nothing mutates them after creation.
@dataclass(slots=True)
class HttpCall:
    """One request. ``url`` is absolute; ``json`` is an already encoded JSON body.

    ``continues``: the call belongs to the exchange before it (a download of its results) and shares
    its deadline. ``on_event`` turns on Server-Sent Events parsing. ``after_cancel``: the call is
    made even though the caller cancelled (telling the server to stop a job), bounded by ``timeout_s``.
    """

    method: str
    url: str
    json: bytes | None = None
    data: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    continues: bool = False
    on_event: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)
    after_cancel: bool = False


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(slots=True)
class HttpResponse:
    """An answer; ``url`` is the request's URL with any password masked (it is named in messages)."""

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
                f"{self.url} answered {self.status} with a body that is not JSON ({exc}): {excerpt(self.content)!r}",
                status=self.status,
                body=excerpt(self.content),
            ) from None


Operation = Generator[HttpCall | Wait, HttpResponse | None, Any]


def _is_transport_failure(exc: BaseException) -> bool:
    """Failures of the network or of httpx itself; everything else (a callback's error) passes through."""
    import httpx

    return isinstance(exc, (httpx.RequestError, httpx.InvalidURL))


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class HttpTransport:
    """One pooled client per backend instance (and one async client per event loop), thread-safe.

    ``origin`` is the service's root URL: ``credentials`` (API key, organization, gateway headers)
    go only to its scheme, host and port. ``secrets`` (and a password in ``origin``) are scrubbed
    from every message.
    """

    def __init__(
        self,
        *,
        origin: str,
        credentials: Mapping[str, str],
        timeout_s: float,
        max_retries: int,
        max_response_bytes: int,
        secrets: Iterable[str | None] = (),
        client: Any = None,
        async_client: Any = None,
    ):
        self._origin = origin
        self._credentials = dict(credentials)
        self._headers_with_credentials = {**NEUTRAL_HEADERS, **credentials}
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_response_bytes = max_response_bytes
        self._secrets = tuple(s for s in (*secrets, *url_secrets(origin)) if s)
        self._client = client
        self._owns_client = client is None
        self._async_client = async_client
        self._async_clients: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._parsed_urls: dict[str, tuple[Any, bool]] = {}
        self._origin_key: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        return f"HttpTransport(timeout_s={self.timeout_s}, max_retries={self.max_retries})"

    # ---- clients --------------------------------------------------------------------------------
    def _client_options(self) -> dict[str, Any]:
        import httpx

        return {
            "timeout": httpx.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s)),
            "limits": httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
            "follow_redirects": False,
            "headers": NEUTRAL_HEADERS,  # on the clients we own, so requests add only the credentials
        }

    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import httpx

                    client = httpx.Client(**self._client_options())
                    guard_client(client)
                    self._client = client
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
        """Close the clients this transport created (a caller's client stays the caller's).

        An async client is closed on its own event loop: awaited there when that loop is idle,
        scheduled when it is running. Prefer :meth:`aclose` from async code.
        """
        with self._lock:
            client, self._client = (self._client, None) if self._owns_client else (None, self._client)
            async_clients = list(self._async_clients.items())
            self._async_clients = weakref.WeakKeyDictionary()
        if client is not None:
            client.close()
        for loop, async_client in async_clients:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(async_client.aclose(), loop)
            elif not loop.is_closed() and not _in_event_loop():
                loop.run_until_complete(async_client.aclose())
            # else: nothing can run on a closed loop, nor on an idle one from inside another loop

    async def aclose(self) -> None:
        """Close this event loop's async client (awaited), then everything :meth:`close` closes."""
        loop = asyncio.get_running_loop()
        with self._lock:
            async_client = self._async_clients.pop(loop, None)
        if async_client is not None:
            await async_client.aclose()
        self.close()

    # ---- one attempt --------------------------------------------------------------------------------
    def _url(self, url: str) -> tuple[Any, bool]:
        """``httpx.URL`` for ``url`` and whether it is on the service's origin, worked out once per URL:
        a backend calls the same few endpoints over and over, and parsing is a third of a request's cost."""
        known = self._parsed_urls.get(url)
        if known is None:
            import httpx

            parsed = httpx.URL(url)
            if self._origin_key is None:
                base = httpx.URL(self._origin)
                self._origin_key = (base.scheme, base.host, base.port)
            known = parsed, (parsed.scheme, parsed.host, parsed.port) == self._origin_key
            if len(self._parsed_urls) < MAX_PARSED_URLS:  # result downloads have one-off URLs
                self._parsed_urls[url] = known
        return known

    def _request_kwargs(self, call: HttpCall, same_origin: bool, owned: bool) -> dict[str, Any]:
        if owned:  # the client already sends the neutral headers
            headers = self._credentials if same_origin else {}
        else:
            headers = self._headers_with_credentials if same_origin else NEUTRAL_HEADERS
        kwargs: dict[str, Any] = {}
        if call.json is not None:
            headers = {**headers, **_JSON_TYPE}
            kwargs["content"] = call.json
        if call.on_event is not None:
            headers = {**headers, **_SSE_ACCEPT}
        if call.data is not None:
            kwargs["data"] = call.data
        if call.files is not None:
            kwargs["files"] = call.files
        kwargs["headers"] = headers
        return kwargs

    def _build(self, client: Any, call: HttpCall, exchange: Exchange, owned: bool) -> Any:
        url, same_origin = self._url(call.url)
        exchange.call = call
        request = client.build_request(call.method, url, **self._request_kwargs(call, same_origin, owned))
        left = exchange.check()  # httpx's own limits: the time left (all a caller's sync client is held to)
        request.extensions["timeout"] = {
            "connect": min(CONNECT_TIMEOUT_S, left),
            "read": left,
            "write": left,
            "pool": left,
        }
        return request

    def _exchange(self, call: HttpCall, exchange: Exchange) -> HttpResponse:
        client = self.client()
        started = time.perf_counter()
        token = current_exchange.set(exchange)  # seen by the guarded sockets of the clients we own
        try:
            request = self._build(client, call, exchange, self._owns_client)
            response = client.send(request, stream=True, follow_redirects=False)  # even on a caller's client
            try:
                reader = BodyReader(call, redact_url(call.url), response, self.max_response_bytes, exchange)
                if reader.read_at_once:
                    reader.feed(response.read())
                else:
                    for chunk in response.iter_bytes():
                        if not reader.feed(chunk):
                            break
                return self._response(reader, response, started)
            finally:
                response.close()
        finally:
            current_exchange.reset(token)

    async def _aattempt(self, call: HttpCall, exchange: Exchange) -> HttpResponse:
        client = self.async_client()
        started = time.perf_counter()
        request = self._build(client, call, exchange, self._async_client is None)
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            reader = BodyReader(call, redact_url(call.url), response, self.max_response_bytes, exchange)
            if reader.read_at_once:
                reader.feed(await response.aread())
            else:
                async for chunk in response.aiter_bytes():
                    if not reader.feed(chunk):
                        break
            return self._response(reader, response, started)
        finally:
            await response.aclose()

    @staticmethod
    def _response(reader: BodyReader, response: Any, started: float) -> HttpResponse:
        return HttpResponse(
            status=response.status_code,
            headers=response.headers,  # httpx.Headers: a case-insensitive Mapping, not copied
            content=b"".join(reader.parts),
            url=reader.label,
            elapsed_s=time.perf_counter() - started,
            events=tuple(reader.events),
        )

    # ---- retries: the decision is shared, only sending and sleeping differ ---------------------
    def send(self, call: HttpCall, exchange: Exchange | None = None) -> HttpResponse:
        """Send ``call`` with retries, within ``exchange`` (a new one when not given)."""
        steps = _Steps(self._retrying(call, exchange if exchange is not None else Exchange(self.timeout_s)))
        for io in steps:
            steps.settle(self._perform, io)
        return steps.value

    def _retrying(self, call: HttpCall, exchange: Exchange) -> Plan:
        """One request and its retries, as the I/O steps to make (each driver makes them its way)."""
        attempt = 0
        while True:
            try:
                response, failure = (yield _Attempt(call, exchange)), None
            except Exception as exc:
                if not _is_transport_failure(exc):
                    raise
                response, failure = None, exc
            delay = self._next_delay(call, attempt, response, failure, exchange)
            if delay is None:
                return response
            yield _Pause(delay, exchange.reporter)
            attempt += 1

    def _next_delay(
        self,
        call: HttpCall,
        attempt: int,
        response: HttpResponse | None,
        failure: BaseException | None,
        exchange: Exchange,
    ) -> float | None:
        """``None``: done, return ``response``. A number: retry after it. Otherwise raise the typed error."""
        if failure is not None:
            import httpx

            retryable = isinstance(failure, (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError))
            delay = retry_delay(attempt, {}) if retryable and attempt < self.max_retries else None
            if delay is None or not exchange.fits(delay):
                raise self._transport_error(call, failure, attempt, exchange) from failure
            return delay
        assert response is not None
        if response.status < 300:
            return None
        if response.status < 400:
            raise self._redirect_error(call, response)
        note = ""
        if attempt < self.max_retries and should_retry(response.status, response.headers):
            delay = retry_delay(attempt, response.headers)
            if delay is not None and exchange.fits(delay):
                return delay
            if delay is not None:
                note = f" (waiting {delay:g} s to retry would pass timeout_s={exchange.timeout_s})"
        raise self._status_error(call, response, attempt, note)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _status_error(self, call: HttpCall, response: HttpResponse, attempt: int, note: str = "") -> ProviderError:
        message = self._scrub(provider_message(response.content))
        tries = f" after {attempt + 1} attempts" if attempt else ""
        error_type = RateLimitError if response.status == 429 else ProviderError
        return error_type(
            f"{call.method} {response.url} failed with HTTP {response.status}{tries}{note}: {message}",
            status=response.status,
            provider_message=message,
            body=self._scrub(excerpt(response.content, 2000)),
            retry_after=parse_retry_after(response.headers),
        )

    def _redirect_error(self, call: HttpCall, response: HttpResponse) -> ProviderError:
        location = self._scrub(redact_url(response.headers.get("location", "nowhere")))
        return ProviderError(
            f"{call.method} {response.url} answered HTTP {response.status} redirecting to {location}; "
            "redirects are not followed (credentials must not travel to another host): "
            "set base_url to the address the service really answers on",
            status=response.status,
        )

    def _transport_error(
        self, call: HttpCall, failure: BaseException, attempt: int, exchange: Exchange
    ) -> AbstractVisionError:
        import httpx

        detail = self._scrub(str(failure) or type(failure).__name__)
        if isinstance(failure, httpx.TimeoutException) and (
            not isinstance(failure, httpx.ConnectTimeout) or time.monotonic() >= exchange.deadline
        ):
            error = exchange.timeout_error()
            return RequestTimeoutError(f"{error} ({detail})", timeout_s=error.timeout_s)
        tries = f" after {attempt + 1} attempts" if attempt else ""
        return ProviderConnectionError(
            f"could not reach {redact_url(call.url)}{tries}: {detail}; check base_url and the server"
        )

    # ---- drivers: the plan is written once; only making its I/O steps differs ----------------------
    def drive(self, operation: Operation, reporter: ProgressReporter | None = None) -> Any:
        """Run a request generator synchronously; failures are thrown back into it.

        ``reporter``'s cancel event is observed while sending, reading and waiting.
        """
        steps = _Steps(self._operating(operation, reporter))
        for io in steps:
            steps.settle(self._perform, io)
        return steps.value

    async def adrive(self, operation: Operation, reporter: ProgressReporter | None = None) -> Any:
        """:meth:`drive` on the event loop, with ``httpx.AsyncClient``."""
        steps = _Steps(self._operating(operation, reporter))
        for io in steps:
            await steps.asettle(self._aperform, io)
        return steps.value

    def _operating(self, operation: Operation, reporter: ProgressReporter | None) -> Plan:
        """A backend's request generator as I/O steps: its calls (with retries, one exchange per
        call not marked ``continues``) and its waits; a library error goes back into it."""
        outcome: HttpResponse | None = None
        failure: BaseException | None = None
        exchange: Exchange | None = None
        while True:
            try:
                step = operation.throw(failure) if failure is not None else operation.send(outcome)
            except StopIteration as stop:
                return stop.value
            outcome, failure = None, None
            try:
                if isinstance(step, Wait):
                    yield _Pause(step.seconds, reporter)
                else:
                    if exchange is None or not step.continues or step.after_cancel:
                        exchange = Exchange(self.timeout_s, None if step.after_cancel else reporter)
                    outcome = yield from self._retrying(step, exchange)
            except AbstractVisionError as exc:
                failure = exc

    def _perform(self, io: _Attempt | _Pause) -> HttpResponse | None:
        if isinstance(io, _Pause):
            return pause(io.seconds, io.reporter)
        return self._exchange(io.call, io.exchange)

    async def _aperform(self, io: _Attempt | _Pause) -> HttpResponse | None:
        if isinstance(io, _Pause):
            return await apause(io.seconds, io.reporter)
        return await io.exchange.run(self._aattempt(io.call, io.exchange))


@dataclass(slots=True)
class _Attempt:
    """I/O step: send ``call`` once, within ``exchange``."""

    call: HttpCall
    exchange: Exchange


@dataclass(slots=True)
class _Pause:
    """I/O step: sleep, watching ``reporter``'s cancel event."""

    seconds: float
    reporter: ProgressReporter | None


#: A plan: I/O steps out, each one's result (or its exception, thrown in) back, the answer returned.
Plan = Generator[_Attempt | _Pause, Any, Any]


class _Steps:
    """Iterates a plan's I/O steps, feeding each one's outcome back: the loop both drivers share."""

    __slots__ = ("_plan", "_result", "_error", "value")

    def __init__(self, plan: Plan):
        self._plan = plan
        self._result: Any = None
        self._error: BaseException | None = None
        self.value: Any = None

    def __iter__(self) -> _Steps:
        return self

    def __next__(self) -> _Attempt | _Pause:
        error, self._error = self._error, None
        try:
            return self._plan.throw(error) if error is not None else self._plan.send(self._result)
        except StopIteration as stop:
            self.value = stop.value
            raise StopIteration from None

    def settle(self, perform: Callable[[Any], Any], io: _Attempt | _Pause) -> None:
        try:
            self._result = perform(io)
        except Exception as exc:  # thrown into the plan, which decides (retry, hand to the operation, raise)
            self._error = exc

    async def asettle(self, perform: Callable[[Any], Any], io: _Attempt | _Pause) -> None:
        try:
            self._result = await perform(io)
        except Exception as exc:
            self._error = exc


__all__ = [
    "CONNECT_TIMEOUT_S",
    "HttpCall",
    "HttpResponse",
    "HttpTransport",
    "NEUTRAL_HEADERS",
    "Operation",
    "Wait",
]
