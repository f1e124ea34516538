"""Jobs: one bounded queue, workers that run jobs on the runner, events for each job, cancel per job.

Every request that generates, sync or not, is a job here, so the queue bound, cancel, progress and
persistence are the same everywhere. A job's life:

``queued`` (record written, inputs stored) -> ``running`` -> ``completed`` | ``failed`` | ``cancelled``.

Cancel is per job: a queued job leaves the queue, a running one gets its own cancel event set
(Diffusers stops at the next step, sd-cli is killed, an HTTP call is abandoned) and its worker
stays busy until the engine has really stopped, so the concurrency bound holds. Finished jobs
leave memory; their records and files stay in SQLite and the store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import AbstractVisionError, BatchGenerationError, GenerationCancelledError
from ..types import ProgressEvent
from .errors import APIError, error_object
from .outputs import store_result
from .records import FINAL_STATUSES, JobRecords
from .runner import Runner

log = logging.getLogger("abstractvision.server")

#: Event types of which a job's history keeps only the newest (a 10,000-step run must not keep 10,000).
_LATEST_ONLY = frozenset({"step", "preview", "loading"})

#: Library progress phases -> job event types (``end`` is implied by ``completed``).
_EVENT_TYPES = {"start": "started", "load": "loading", "download": "loading", "step": "step", "preview": "preview"}


def queue_full(max_queue: int, retry_after: int) -> APIError:
    """429 with ``Retry-After``: the queue holds ``max_queue`` jobs."""
    return APIError(
        429,
        f"the queue is full ({max_queue} jobs waiting); retry in about {retry_after} s",
        type="rate_limit_error",
        code="queue_full",
        headers={"Retry-After": str(retry_after)},
    )


def shutting_down() -> APIError:
    return APIError(503, "the server is shutting down; retry later", type="server_error", code="shutting_down")


@dataclass(eq=False)
class Job:
    """One job in memory while it is queued or running (see the module docstring)."""

    id: str
    owner: str
    task: str
    request: dict[str, Any]  # what the record keeps: fields (inputs as file ids), n, output options
    fields: dict[str, Any]  # what the runner gets: inputs as bytes
    created: float
    status: str = "queued"
    step: int | None = None
    total: int | None = None
    result: list[dict[str, Any]] | None = None
    error: dict[str, Any] | None = None
    error_status: int = 500  # the HTTP status a sync request answers a failure with
    cancel: threading.Event = field(default_factory=threading.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    history: list[dict[str, Any]] = field(default_factory=list)
    listeners: set[asyncio.Queue] = field(default_factory=set)

    @property
    def count(self) -> int:
        return int(self.request.get("n") or 1)


def job_view(record: dict[str, Any], *, queue_position: int | None = None, progress: dict | None = None) -> dict:
    """The public shape of a job (``GET /v1/jobs/{id}``), from a record or a live job."""
    view: dict[str, Any] = {
        "id": record["id"],
        "object": "job",
        "task": record["task"],
        "status": record["status"],
        "created": int(record["created"]),
        "progress": progress or record.get("progress") or {"step": None, "total": None},
        "poll_url": f"/v1/jobs/{record['id']}",
    }
    if queue_position is not None:
        view["queue_position"] = queue_position
    if record.get("result") is not None:
        view["result"] = record["result"]
    if record.get("error") is not None:
        view["error"] = record["error"]
    return view


class JobQueue:
    """The bounded queue and its workers (see the module docstring)."""

    def __init__(self, runner: Runner, records: JobRecords, store: Any, *, max_queue: int, concurrency: int):
        self.runner = runner
        self.records = records
        self.store = store
        self.max_queue = max_queue
        self.concurrency = concurrency
        self._pending: deque[Job] = deque()
        self._held = 0  # places held by requests still storing their uploads (see holding_a_place)
        self._live: dict[str, Job] = {}
        self._wakeup = asyncio.Condition()
        self._workers: list[asyncio.Task] = []
        self._accepting = True
        self._closing: asyncio.Task | None = None
        self._mean_run_s = 5.0  # a first guess for Retry-After, then a running average

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        for record in self.records.recover():
            try:
                job = self._job_from_record(record)
            except AbstractVisionError as exc:  # an input file went missing while the server was down
                self.records.finish(record["id"], "failed", error=error_object(exc)[1], owner=record["owner"])
                continue
            self._pending.append(job)
            self._live[job.id] = job
        self._workers = [
            asyncio.create_task(self._work(), name=f"abstractvision-worker-{i}") for i in range(self.concurrency)
        ]

    def close(self, grace_s: float) -> None:
        """Take no more jobs and start no queued one; cancel the running ones still running after
        ``grace_s``. Queued jobs stay queued in their records and run after a restart.

        Called as soon as the server is told to stop (see :func:`~abstractvision.server.app.serve_app`),
        so the grace period starts then and a job finishing in it does not hand its worker the next one.
        """
        if self._closing is None:
            self._accepting = False
            self._closing = asyncio.create_task(self._drain(grace_s), name="abstractvision-drain")

    async def _drain(self, grace_s: float) -> None:
        async with self._wakeup:
            self._wakeup.notify_all()
        running = [job for job in self._live.values() if job.status == "running"]
        if running:
            await asyncio.wait([asyncio.create_task(job.done.wait()) for job in running], timeout=grace_s)
        for job in running:
            if not job.done.is_set():
                log.warning("job %s: cancelled at shutdown after the %.0f s grace period", job.id, grace_s)
                job.cancel.set()

    async def stop(self, grace_s: float) -> None:
        """:meth:`close` (if not done yet), then wait for the workers to end."""
        self.close(grace_s)
        await self._closing
        if self._workers:
            await asyncio.wait(self._workers, timeout=max(grace_s, 5.0))
        for worker in self._workers:
            worker.cancel()

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def full(self) -> bool:
        return len(self._pending) + self._held >= self.max_queue

    @property
    def queued(self) -> int:
        return len(self._pending)

    # ---- jobs --------------------------------------------------------------------------------
    @contextmanager
    def holding_a_place(self) -> Iterator[None]:
        """Refuse now (503 closing, 429 full), else hold a place in the queue while the caller gets
        its job ready (stores its uploads), then :meth:`submit` it.

        Why: a request refused after its uploads were stored would leave them in the store for good
        (nothing refers to them), so a stream of 429s under load would fill the disk.
        """
        self._check_room()
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def _check_room(self) -> None:
        if not self._accepting:
            raise shutting_down()
        if self.full:
            wait = max(1, round(self._mean_run_s * (len(self._pending) + 1) / self.concurrency))
            raise queue_full(self.max_queue, wait)

    async def submit(self, owner: str, task: str, request: dict[str, Any], fields: dict[str, Any]) -> Job:
        """Queue a job (record first, so an accepted job survives a crash) or refuse with 429 (:func:`queue_full`)."""
        self._check_room()
        job = Job(uuid.uuid4().hex, owner, task, request, fields, time.time())
        self.records.insert(job.id, owner, task, request, job.created)
        self._live[job.id] = job
        self._pending.append(job)
        self._emit(job, {"type": "queued", "queue_position": len(self._pending)})
        async with self._wakeup:
            self._wakeup.notify()
        return job

    def live(self, job_id: str) -> Job | None:
        return self._live.get(job_id)

    def queue_position(self, job: Job) -> int | None:
        try:
            return self._pending.index(job) + 1
        except ValueError:
            return None

    def view(self, job_id: str, owner: str) -> dict[str, Any] | None:
        """The job as the API shows it, or ``None`` if there is none of this owner's."""
        job = self._live.get(job_id)
        if job is not None:
            if job.owner != owner:
                return None
            record = {"id": job.id, "task": job.task, "status": job.status, "created": job.created}
            record.update(result=job.result, error=job.error)
            return job_view(record, queue_position=self.queue_position(job), progress=_progress(job))
        record = self.records.get(job_id)
        if record is None or record["owner"] != owner:
            return None
        return job_view(record)

    def cancel(self, job: Job) -> None:
        """Stop ``job``: out of the queue if queued, its engine stopped if running."""
        if job.status in FINAL_STATUSES:
            return
        job.cancel.set()
        if job.status == "queued":
            try:
                self._pending.remove(job)
            except ValueError:  # a worker just took it; it sees the event before running
                return
            self._finish(job, "cancelled", error=_cancelled_error())

    def subscribe(self, job: Job) -> asyncio.Queue:
        """A queue of the job's events: what happened so far, then what happens next."""
        listener: asyncio.Queue = asyncio.Queue()
        for event in job.history:
            listener.put_nowait(event)
        if job.status in FINAL_STATUSES:
            listener.put_nowait(None)
        else:
            job.listeners.add(listener)
        return listener

    # ---- the workers -------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            async with self._wakeup:
                await self._wakeup.wait_for(lambda: self._pending or not self._accepting)
                if not self._accepting:
                    return
                job = self._pending.popleft()
            await self._execute(job)

    async def _execute(self, job: Job) -> None:
        if job.cancel.is_set():
            self._finish(job, "cancelled", error=_cancelled_error())
            return
        loop = asyncio.get_running_loop()
        job.status = "running"
        self.records.mark_running(job.id)
        self._emit(job, {"type": "running"})
        started = time.perf_counter()

        def on_progress(event: ProgressEvent) -> None:  # called from the engine's thread
            loop.call_soon_threadsafe(self._on_progress, job, event)

        try:
            assets = await self.runner.run(
                job.task, job.fields, job.count, on_progress, job.cancel, model=job.request.get("model")
            )
            items = await asyncio.to_thread(self._store_all, assets, job.request)
        except BatchGenerationError as exc:
            kept = await asyncio.to_thread(self._store_all, exc.results, job.request)
            self._fail(job, exc.__cause__ or exc, kept)
        except Exception as exc:  # a backend failure never takes the server down
            self._fail(job, exc, None)
        else:
            self._finish(job, "completed", result=items)
        finally:
            elapsed = time.perf_counter() - started
            self._mean_run_s = 0.8 * self._mean_run_s + 0.2 * elapsed

    def _store_all(self, assets: list[Any], request: dict[str, Any]) -> list[dict[str, Any]]:
        return [store_result(self.store, asset, request) for asset in assets if hasattr(asset, "data")]

    def _fail(self, job: Job, exc: BaseException, kept: list[dict[str, Any]] | None) -> None:
        if job.cancel.is_set() or isinstance(exc, GenerationCancelledError):
            self._finish(job, "cancelled", result=kept, error=_cancelled_error())
            return
        if not isinstance(exc, AbstractVisionError):
            log.error("job %s: unexpected %s from the backend", job.id, type(exc).__name__, exc_info=exc)
        job.error_status, error = error_object(exc)
        self._finish(job, "failed", result=kept, error=error)

    def _finish(self, job: Job, status: str, *, result: list | None = None, error: dict | None = None) -> None:
        job.status, job.result, job.error = status, result, error
        self.records.finish(job.id, status, result=result, error=error, owner=job.owner, progress=_progress(job))
        event: dict[str, Any] = {"type": status}
        if error is not None:
            event["error"] = error
        if result is not None:
            event["result"] = result
        self._emit(job, event)
        for listener in job.listeners:
            listener.put_nowait(None)  # end of stream
        job.listeners.clear()
        job.done.set()
        self._live.pop(job.id, None)

    def _on_progress(self, job: Job, event: ProgressEvent) -> None:
        kind = _EVENT_TYPES.get(event.phase)
        if kind is None or job.status in FINAL_STATUSES:
            return
        if event.step is not None:
            job.step = event.step
        if event.total_steps is not None:
            job.total = event.total_steps
        payload: dict[str, Any] = {"type": kind, "progress": _progress(job)}
        if event.message:
            payload["message"] = event.message
        if event.preview is not None:
            import base64

            payload["b64_json"] = base64.b64encode(event.preview).decode("ascii")
        self._emit(job, payload)

    def _emit(self, job: Job, payload: dict[str, Any]) -> None:
        event = {"job_id": job.id, "status": job.status, "created": round(time.time(), 3), **payload}
        if payload["type"] in _LATEST_ONLY:  # a late subscriber needs the newest only: history stays small
            job.history = [e for e in job.history if e["type"] != payload["type"]]
        job.history.append(event)
        for listener in job.listeners:
            listener.put_nowait(event)

    def _job_from_record(self, record: dict[str, Any]) -> Job:
        request = record["request"]
        fields = dict(request.get("fields") or {})
        for name, ids in (request.get("inputs") or {}).items():
            fields[name] = (
                [self.store.load_bytes(i) for i in ids] if isinstance(ids, list) else self.store.load_bytes(ids)
            )
        return Job(record["id"], record["owner"], record["task"], request, fields, record["created"])


def _progress(job: Job) -> dict[str, Any]:
    return {"step": job.step, "total": job.total}


def _cancelled_error() -> dict[str, Any]:
    return {"message": "the job was cancelled", "type": "cancelled", "param": None, "code": "cancelled"}


__all__ = ["Job", "JobQueue", "job_view", "queue_full", "shutting_down"]
