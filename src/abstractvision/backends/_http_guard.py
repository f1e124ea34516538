"""One deadline and the caller's cancel, held over an HTTP exchange whatever the server does.

Why not httpx's timeouts alone: its read timeout restarts with every byte, so a server that sends
its headers or body one byte a second holds a call for ever, and httpx has no notion of a caller's
cancel event. An :class:`Exchange` is the budget of one exchange as the user sees it (the request,
its retries, the waits between them and the downloads of its results): a fixed deadline plus the
progress reporter whose cancel event is observed.

How it is enforced:

* sync, on the clients the transport creates: :func:`guard_client` wraps httpcore's network
  backend, so every blocking socket read waits at most until the deadline, in slices short enough
  to see a cancel (:data:`CANCEL_POLL_S`); connects, TLS handshakes and writes are bounded by the
  deadline. The exchange under way is found through a context variable set by the transport.
* async, on any client: :meth:`Exchange.run` runs the attempt as a task and stops it at the
  deadline or on cancel.
* a caller's own sync client cannot be wrapped: its requests get the remaining time as their httpx
  timeouts and are checked between body chunks, a best effort documented on the backend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from ..errors import RequestTimeoutError
from ..progress import ProgressReporter
from ..redaction import redact_url

#: Longest a blocking read waits before looking at the cancel event again (only when there is one).
CANCEL_POLL_S = 0.05

T = TypeVar("T")


class Exchange:
    """The budget of one exchange: ``timeout_s`` from its first request on, and the caller's cancel.

    ``call`` is the request under way (set by the transport per attempt), named in the timeout message.
    """

    __slots__ = ("timeout_s", "deadline", "reporter", "cancel", "call")

    def __init__(self, timeout_s: float, reporter: ProgressReporter | None = None):
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.reporter = reporter
        self.cancel = reporter.cancel_event if reporter is not None else None
        self.call: Any = None

    def check(self) -> float:
        """Seconds left; raises :class:`GenerationCancelledError` or :class:`RequestTimeoutError` first."""
        if self.cancel is not None and self.cancel.is_set():
            self.reporter.raise_if_cancelled()  # type: ignore[union-attr]
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.timeout_error()
        return left

    def bound(self, timeout: float | None) -> float:
        """``timeout`` shortened to what is left (after :meth:`check`)."""
        left = self.check()
        return left if timeout is None or left < timeout else timeout

    def slice(self, timeout: float | None) -> float:
        """How long the next blocking wait may last: :meth:`bound`, and short enough to see a cancel."""
        wait = self.bound(timeout)
        return CANCEL_POLL_S if self.cancel is not None and wait > CANCEL_POLL_S else wait

    def fits(self, delay: float) -> bool:
        """Whether waiting ``delay`` seconds still leaves time for another attempt."""
        return time.monotonic() + delay < self.deadline

    def timeout_error(self) -> RequestTimeoutError:
        what = f"{self.call.method} {redact_url(self.call.url)}" if self.call is not None else "the request"
        return RequestTimeoutError(f"{what} took longer than timeout_s={self.timeout_s}", timeout_s=self.timeout_s)

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` (one async attempt) until the deadline or a cancel, whichever comes first."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                done, _ = await asyncio.wait((task,), timeout=self.slice(None))
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def pause(seconds: float, reporter: ProgressReporter | None) -> None:
    """Sleep ``seconds``, or less when the caller cancels (then raise)."""
    cancel = reporter.cancel_event if reporter is not None else None
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        reporter.raise_if_cancelled()  # type: ignore[union-attr]


async def apause(seconds: float, reporter: ProgressReporter | None) -> None:
    """:func:`pause` on the event loop: polls the (threading) cancel event every :data:`CANCEL_POLL_S`."""
    cancel = reporter.cancel_event if reporter is not None else None
    if cancel is None:
        await asyncio.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while not cancel.is_set():
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, CANCEL_POLL_S))
    reporter.raise_if_cancelled()  # type: ignore[union-attr]


# ---- the sync enforcement: httpcore's network backend, wrapped -------------------------------------
#: The exchange whose request runs in this thread (or task); ``None`` outside the transport.
current_exchange: ContextVar[Exchange | None] = ContextVar("abstractvision_http_exchange", default=None)


class _GuardedStream:
    """An httpcore network stream whose blocking calls obey :data:`current_exchange`."""

    def __init__(self, stream: Any, read_timeout: type[Exception]):
        self._stream = stream
        self._read_timeout = read_timeout

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        exchange = current_exchange.get()
        if exchange is None:
            return self._stream.read(max_bytes, timeout)
        while True:  # a socket read that timed out lost nothing: wait again until deadline or cancel
            wait = exchange.slice(timeout)
            try:
                return self._stream.read(max_bytes, wait)
            except self._read_timeout:
                if timeout is not None and wait >= timeout:
                    raise  # httpx's own read timeout ran out before the deadline

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        exchange = current_exchange.get()
        self._stream.write(buffer, exchange.bound(timeout) if exchange is not None else timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        exchange = current_exchange.get()
        timeout = exchange.bound(timeout) if exchange is not None else timeout
        return _GuardedStream(self._stream.start_tls(ssl_context, server_hostname, timeout), self._read_timeout)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _GuardedBackend:
    """httpcore's network backend, returning :class:`_GuardedStream` and bounding connects."""

    def __init__(self, backend: Any):
        import httpcore

        self._backend = backend
        self._read_timeout = httpcore.ReadTimeout

    def _connect(self, connect: Callable[..., Any], timeout: float | None, **options: Any) -> _GuardedStream:
        exchange = current_exchange.get()
        timeout = exchange.bound(timeout) if exchange is not None else timeout
        return _GuardedStream(connect(timeout=timeout, **options), self._read_timeout)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **options: Any) -> _GuardedStream:
        return self._connect(self._backend.connect_tcp, timeout, host=host, port=port, **options)

    def connect_unix_socket(self, path: str, timeout: float | None = None, **options: Any) -> _GuardedStream:
        return self._connect(self._backend.connect_unix_socket, timeout, path=path, **options)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def guard_client(client: Any) -> None:
    """Wrap the network backend of every transport of a client the transport created.

    Reaches into ``httpx.HTTPTransport._pool`` and httpcore's ``ConnectionPool._network_backend``:
    httpx has no public hook for a network backend, and this is the only layer that sees each
    blocking read. On an httpx without them the client still works, held only to the best-effort
    limits a caller's client gets, and the hostile-server tests fail to say so.
    """
    for transport in (client._transport, *client._mounts.values()):  # the mounts: proxies from the environment
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _GuardedBackend):
            pool._network_backend = _GuardedBackend(backend)  # type: ignore[union-attr]


__all__ = ["CANCEL_POLL_S", "Exchange", "apause", "current_exchange", "guard_client", "pause"]
