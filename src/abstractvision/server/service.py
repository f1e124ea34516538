"""The server's state in one object: settings, keys, store, job records, queue and runner.

Routes ask it to submit a job and to wait for one; it owns startup (recover records, preload)
and shutdown (grace period, then cancel). It knows no engine: that is the runner's business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..artifacts import LocalAssetStore, artifact_id_of
from ..validation import gate_capabilities
from .adapters import allow_listed, refuse_unsupported
from .auth import KeyRing
from .errors import APIError
from .jobs import Job, JobQueue, shutting_down
from .records import JobRecords
from .requests import Submission
from .runner import Runner
from .settings import ServerConfig

log = logging.getLogger("abstractvision.server")

#: How often a waiting sync request checks whether the server is stopping.
_SHUTDOWN_CHECK_S = 1.0


class ImageService:
    def __init__(self, config: ServerConfig, runner: Runner, *, backend_name: str, local_engine: bool):
        self.config = config
        self.runner = runner
        self.backend_name = backend_name
        self.keys = KeyRing(config.api_keys)
        root = config.store_path()
        self.store = LocalAssetStore(root / "files")
        self.records = JobRecords(root / "jobs.sqlite3")
        concurrency = config.concurrency or (1 if local_engine else 4)
        self.queue = JobQueue(runner, self.records, self.store, max_queue=config.max_queue, concurrency=concurrency)
        self.started_at = time.time()
        self.ready = False
        self.not_ready_reason: str | None = "starting"
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"ImageService(model={self.model_id!r}, backend={self.backend_name!r}, {self.config!r})"

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self.runner.model_ids

    @property
    def model_id(self) -> str:
        """The default model: what a request that names none gets."""
        return self.runner.model_ids[0]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.queue.start()
        try:
            await self.runner.start()
        except Exception as exc:  # the server stays up to say why on /readyz
            log.error("the backend failed to load: %s", exc)
            self.not_ready_reason = f"the backend failed to load: {' '.join(str(exc).split())}"
            return
        self.ready, self.not_ready_reason = True, None

    def begin_shutdown(self) -> None:
        """The server was told to stop: refuse new jobs (503), start no queued one, and give the
        running ones the grace period from now. Safe to call from a signal handler."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        self.ready, self.not_ready_reason = False, "shutting down"
        self.queue.close(self.config.grace_s)

    async def stop(self) -> None:
        self._close()
        await self.queue.stop(self.config.grace_s)
        try:
            await self.runner.close()
        finally:
            self.records.close()

    # ---- jobs --------------------------------------------------------------------------------
    async def submit(self, owner: str, submission: Submission) -> Job:
        """Store the inputs (a queued job must survive a restart), then queue the job.

        A task the backend cannot do is refused here (400), not accepted and failed later: a client
        of ``POST /v1/videos`` on an image-only server learns it from its first answer. So are LoRA
        adapters the backend does not list (see :mod:`~abstractvision.server.adapters`). A full queue
        refuses before anything is stored."""
        capabilities = self.runner.capabilities(submission.request.get("model"))
        gate_capabilities(submission.task, None, capabilities, self.backend_name)
        adapters = submission.request["fields"].get("lora_adapters")
        if adapters:
            refuse_unsupported(self.backend_name, capabilities.supports_lora)
            offered = await self.runner.adapters(submission.request.get("model"))
            submission.request["fields"]["lora_adapters"] = allow_listed(adapters, offered)
        fields = dict(submission.request["fields"])
        stored: dict[str, Any] = {}
        if submission.inputs:
            with self.queue.holding_a_place():
                stored = await asyncio.to_thread(self._store_inputs, submission.inputs)
        fields.update(submission.inputs)
        request = {**submission.request, "inputs": stored}
        job = await self.queue.submit(owner, submission.task, request, fields)
        # prompts are the users' words: at debug level only, never at info (see the access log)
        log.debug("job %s: %s prompt=%r", job.id, submission.task, fields.get("prompt"))
        return job

    def _store_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        def keep(data: bytes) -> str:
            return artifact_id_of(self.store.store_bytes(data, tags={"role": "input"}))

        return {
            name: [keep(d) for d in data] if isinstance(data, list) else keep(data) for name, data in inputs.items()
        }

    async def wait(self, job: Job, receive: Any) -> None:
        """Wait for ``job``; a client that hangs up cancels it (out of the queue, or its engine stopped).

        Event-driven: one task waits for the job, one for the client's ``http.disconnect`` (ASGI
        ``receive`` blocks until it comes once the body is read), so the answer leaves as soon as the
        job is done. Once a second the wait also checks for shutdown: a job still queued then is
        cancelled and its client told so (503) at once, since its connection would be cut before a
        restart could run it.
        """
        done = asyncio.ensure_future(job.done.wait())
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            while not (done.done() or gone.done()):
                await asyncio.wait((done, gone), timeout=_SHUTDOWN_CHECK_S, return_when=asyncio.FIRST_COMPLETED)
                if not done.done() and not self.queue.accepting and job.status == "queued":
                    self.queue.cancel(job)
                    raise shutting_down()
        except asyncio.CancelledError:  # the server cancelled the request (shutdown, disconnect)
            self.queue.cancel(job)
            raise
        finally:
            done.cancel()
            gone.cancel()
        if not job.done.is_set():
            log.info("job %s: client disconnected; cancelling", job.id)
            self.queue.cancel(job)

    def outcome(self, job: Job) -> list[dict[str, Any]]:
        """A finished job's result items, or its error raised as the API error it is."""
        if job.status == "completed":
            return job.result or []
        raise self.failure(job)

    def failure(self, job: Job) -> APIError:
        """The API error of a job that ended without a result (a cancelled one: 503, its client was told)."""
        error = job.error or {}
        if job.status == "cancelled":
            return APIError(503, error.get("message", "the job was cancelled"), type="server_error", code="cancelled")
        return APIError(
            job.error_status,
            error.get("message", "generation failed"),
            type=error.get("type", "server_error"),
            param=error.get("param"),
            code=error.get("code"),
        )

    def file_for(self, file_id: str, owner: str) -> tuple[bytes, str]:
        content_type = self.records.file_content_type(file_id, owner)
        if content_type is None:
            raise APIError(404, f"file {file_id!r} not found", param="file_id", code="not_found")
        return self.store.load_bytes(file_id), content_type


async def _disconnect(receive: Any) -> None:
    """Return when the client has gone (the request body was read already, so nothing else arrives)."""
    while (await receive())["type"] != "http.disconnect":
        pass


__all__ = ["ImageService"]
