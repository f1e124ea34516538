"""One progress-and-cancel path shared by every backend.

Backends receive a ``progress_callback``. The manager always passes a :class:`ProgressReporter`
(never ``None``), so no backend tests for ``None``; a backend called directly may receive a plain
callable or ``None`` and wraps it with :func:`as_reporter`. A reporter:

* stamps every event with the task and the elapsed time,
* forwards it to the caller's ``on_progress`` (if any),
* raises :class:`GenerationCancelledError` at the next report once the caller's cancel event is
  set, which is how Diffusers' step callback and sd.cpp's progress hook stop a run promptly;
  backends that wait on a process poll :attr:`ProgressReporter.cancelled` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import GenerationCancelledError
from .types import ProgressCallback, ProgressEvent


class ProgressReporter:
    """Callable progress sink bound to one task run (see the module docstring)."""

    def __init__(
        self,
        task: str,
        callback: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ):
        self.task = task
        self._callback = callback
        self.cancel_event = cancel
        self._started = time.perf_counter()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event is not None and self.cancel_event.is_set()

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._started

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise GenerationCancelledError(f"{self.task} was cancelled by the caller")

    def __call__(self, event: ProgressEvent) -> None:
        if self._callback is not None:
            self._callback(event)
        self.raise_if_cancelled()

    def report(
        self,
        phase: str,
        *,
        step: int | None = None,
        total_steps: int | None = None,
        message: str | None = None,
        preview: bytes | None = None,
        fraction: float | None = None,
    ) -> None:
        """Build an event stamped with the task and elapsed time, then deliver it."""
        if self._callback is None:  # nobody listens: only the cancel check matters (hot path)
            self.raise_if_cancelled()
            return
        if fraction is None and step is not None and total_steps:
            fraction = min(1.0, max(0.0, step / total_steps))
        if phase == "end":
            fraction = 1.0
        elif phase == "start" and fraction is None:
            fraction = 0.0
        self(
            ProgressEvent(
                task=self.task,
                phase=phase,  # type: ignore[arg-type]
                step=step,
                total_steps=total_steps,
                fraction=fraction,
                elapsed_s=self.elapsed_s,
                message=message,
                preview=preview,
            )
        )

    def start(self, total_steps: int | None = None, message: str | None = None) -> None:
        self.report("start", step=0, total_steps=total_steps, message=message)

    def step(self, step: int, total_steps: int | None) -> None:
        self.report("step", step=step, total_steps=total_steps)

    def end(self, total_steps: int | None = None) -> None:
        self.report("end", step=total_steps, total_steps=total_steps)


def as_reporter(
    callback: ProgressReporter | Callable[[ProgressEvent], None] | None,
    task: str,
) -> ProgressReporter:
    """Return ``callback`` if it already is a reporter, else wrap it (``None`` becomes a no-op)."""
    if isinstance(callback, ProgressReporter):
        return callback
    return ProgressReporter(task, callback)


__all__ = ["ProgressReporter", "as_reporter"]
