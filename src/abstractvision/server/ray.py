"""The same server on Ray Serve: one FastAPI ingress (routes, keys, job records, store) and engine
replicas that hold one backend each, loading models on demand (``[ray]`` extra).

Build it with :func:`app` (``serve run abstractvision.server.ray:app provider=diffusers model=a,b``,
``serve deploy`` config files, a KubeRay ``RayService``) or with ``abstractvision serve --ray``.

* **Ingress** (:class:`Gateway`, one replica): the app of :func:`abstractvision.server.app.create_app`
  unchanged, so the HTTP API is byte for byte the plain server's. Its runner (:class:`RayRunner`)
  sends each job to the engine deployment; job records and results stay with the ingress (its
  store folder), never in an engine replica's memory, so a replica that dies loses no result.
* **Engines** (:class:`EngineReplica`): ``serve.multiplexed`` keeps up to
  ``max_models_per_replica`` models loaded per replica (least recently used evicted) and Ray routes a
  model's requests to replicas that already hold it. Only allow-listed models load: an unknown model
  is a 404 at the ingress, never a download. Work runs in a worker thread, so health checks answer
  during a long generation; a replica whose engine broke (an unexpected exception) fails its health
  check and Ray replaces it.
* **Cancel**: cancelling a job cancels its Ray request; the replica sets the run's cancel event,
  which stops Diffusers at the next step and kills sd-cli. A client that hangs up cancels the same way.
  Ray frees the replica's slot at once; engines whose runs share state (Diffusers, the sd.cpp
  bindings) hold a lock, so a next job there starts once the cancelled run has stopped.
* **Failures** cross Ray as data (:func:`_failure_item`), so the ingress's queue sees the engine's
  error as a plain server's would (same status, code and message, the batch's finished items kept).
* **Operators and tests** ask a replica what it holds and did last with ``state()`` on a handle.
* **A replica that dies mid-job** fails that job (``engine_error``, "the engine replica running this
  job died"); it is not retried, since the same input may kill the next replica too. Ray starts a
  replacement; queued jobs go to the replicas that are alive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pickle
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ..backends import optional_dependency
from ..errors import (
    AbstractVisionError,
    BackendNotConfiguredError,
    BatchGenerationError,
    EngineError,
    GenerationCancelledError,
)
from ..types import GeneratedAsset, ProgressEvent, ProviderAdapterInfo, VisionBackendCapabilities
from .ray_config import RayDeployment, deployment_from_args

with optional_dependency("ray", "abstractvision serve --ray"):
    from ray import serve
    from ray.exceptions import RayError
    from ray.serve import Application

log = logging.getLogger("abstractvision.server.ray")

#: The Ray Serve application's name (``serve --ray``; ``serve run``/``serve deploy`` name their own).
APP_NAME = "abstractvision"

#: How often a running Ray request checks whether its job was cancelled.
_CANCEL_POLL_S = 0.05

#: How long the ingress keeps a replica's list of LoRA adapters (see :meth:`RayRunner.adapters`): an
#: adapter added to the folder is accepted, and one removed refused by the engine, at most this late.
ADAPTERS_TTL_S = 30.0


# ---- engine replicas ---------------------------------------------------------------------------
class _LoadedModel:
    """A manager held by the multiplexer; evicting it (Ray calls ``__del__``) releases the engine's
    memory and tells the replica (``on_unload``)."""

    def __init__(self, manager: Any, on_unload: Callable[[], None]):
        self.manager = manager
        self._on_unload = on_unload

    def __del__(self) -> None:
        manager, self.manager = getattr(self, "manager", None), None
        if manager is not None:
            self._on_unload()
            manager.unload()
            manager.close()


class EngineReplica:
    """One backend per loaded model; runs jobs and streams their progress back to the ingress."""

    def __init__(self, deployment: RayDeployment):
        self.deployment = deployment
        self.broken: str | None = None
        self.loaded: list[str] = []  # least recently used first, as the multiplexer evicts
        self.last_run: dict[str, Any] | None = None
        if deployment.ray.gpu_memory_gb:
            _limit_gpu_memory(deployment.ray.gpu_memory_gb)

        async def load(model: str) -> _LoadedModel:
            return await self._load(model)

        self.get_model = serve.multiplexed(max_num_models_per_replica=deployment.ray.max_models_per_replica)(load)

    async def _load(self, model: str) -> _LoadedModel:
        from ..errors import UnknownModelError
        from ..vision_manager import VisionManager

        if model not in self.deployment.models:  # the ingress checks first; this is the replica's own guard
            raise UnknownModelError(f"model {model!r} is not on this server's allow-list")
        backend = self.deployment.build_backend(model)
        await asyncio.to_thread(backend.preload)
        log.info("loaded model %s", model)
        return _LoadedModel(VisionManager(backend=backend), lambda: self._forget(model))

    def _forget(self, model: str) -> None:
        self.loaded = [m for m in self.loaded if m != model]
        log.info("unloaded model %s (least recently used)", model)

    async def run(self, task: str, fields: dict[str, Any], count: int) -> AsyncIterator[dict[str, Any]]:
        """Stream ``{"progress": {...}}`` items, then one ``{"assets": [...]}`` or ``{"failure": ...}``
        (see :func:`_failure_item`). Cancelling the Ray request (the ingress's cancel, or its client
        leaving) stops the engine."""
        from .runner import LocalRunner

        model = serve.get_multiplexed_model_id()
        loaded = await self.get_model(model)
        self.loaded = [m for m in self.loaded if m != model] + [model]
        run = self.last_run = {"model": model, "task": task, "status": "running", "step": None, "total": None}
        events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        cancel = threading.Event()

        def on_progress(event: ProgressEvent) -> None:  # the engine's thread
            if event.phase == "step":
                run["step"], run["total"] = event.step, event.total_steps
            loop.call_soon_threadsafe(events.put_nowait, dataclasses.asdict(event))

        runner = LocalRunner(loaded.manager, model)
        work = asyncio.ensure_future(runner.run(task, fields, count, on_progress, cancel))
        try:
            while not work.done() or not events.empty():
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({work, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield {"progress": getter.result()}
                else:
                    getter.cancel()
            try:
                assets = work.result()
            except Exception as exc:
                failure = _failure_item(exc)
                cause = failure["error"]
                run["status"] = "cancelled" if isinstance(cause, GenerationCancelledError) else "failed"
                if not isinstance(cause, AbstractVisionError):  # the engine is in an unknown state
                    self.broken = f"{type(cause).__name__}: {cause}"
                    log.error("the engine broke; the health check now fails so Ray replaces this replica: %s", cause)
                yield {"failure": failure}
                return
            run["status"] = "completed"
            yield {"assets": [dataclasses.asdict(asset) for asset in assets]}
        except (asyncio.CancelledError, GeneratorExit):
            cancel.set()
            await asyncio.shield(asyncio.wait({work}))
            _ignore_outcome(work)  # the engine's GenerationCancelledError: expected, not worth a traceback
            run["status"] = "cancelled"
            raise

    async def adapters(self, model: str) -> list[dict[str, Any]]:
        """The LoRA adapters ``model``'s backend lists on this replica (its disk, its HF cache), from a
        backend built for the question and never loaded, so asking loads no model."""
        backend = self.deployment.build_backend(model)
        try:
            return [dataclasses.asdict(info) for info in await asyncio.to_thread(backend.list_provider_adapters)]
        finally:
            backend.close()

    def state(self) -> dict[str, Any]:
        """What this replica holds and did last, for operators and tests: its Ray tag and process id,
        the loaded models (least recently used first) and the last run (``step`` is where its engine
        was when it ended: a cancelled run shows where it stopped)."""
        import os

        context = serve.get_replica_context()
        return {
            "replica": context.replica_tag,
            "pid": os.getpid(),
            "models": list(self.loaded),
            "last_run": dict(self.last_run) if self.last_run else None,
            "broken": self.broken,
        }

    def check_health(self) -> None:
        if self.broken:
            raise RuntimeError(f"the engine broke ({self.broken}); Ray replaces this replica")


# ---- the ingress's runner ------------------------------------------------------------------------
class RayRunner:
    """The job queue's runner when engines live on Ray replicas (see :class:`Runner`)."""

    def __init__(self, engine: Any, deployment: RayDeployment):
        self.engine = engine
        self.deployment = deployment
        self._capabilities: dict[str, VisionBackendCapabilities] = {}
        self._adapters: dict[str, tuple[float, list[ProviderAdapterInfo]]] = {}

    def __repr__(self) -> str:
        return f"RayRunner(models={list(self.deployment.models)!r})"

    @property
    def model_ids(self) -> tuple[str, ...]:
        return self.deployment.model_ids

    @property
    def model_id(self) -> str:
        return self.model_ids[0]

    async def start(self) -> None:
        return None

    def capabilities(self, model: str | None = None) -> VisionBackendCapabilities:
        """From a backend built here but never loaded (capabilities come from settings, not weights)."""
        model = model or self.model_id
        if model not in self._capabilities:
            self._capabilities[model] = self.deployment.build_backend(model).get_capabilities()
        return self._capabilities[model]

    async def adapters(self, model: str | None = None) -> list[ProviderAdapterInfo]:
        """Asked of an engine replica, where the adapter files are (the ingress may not see them), and
        kept for :data:`ADAPTERS_TTL_S`: the question queues behind a running generation (a replica
        takes one request at a time), so a request with ``lora`` must not wait for one each time."""
        model = model or self.model_id
        kept = self._adapters.get(model)
        if kept is not None and time.monotonic() - kept[0] < ADAPTERS_TTL_S:
            return kept[1]
        infos = [ProviderAdapterInfo(**info) for info in await self.engine.adapters.remote(model)]
        self._adapters[model] = (time.monotonic(), infos)
        return infos

    async def run(
        self,
        task: str,
        fields: dict[str, Any],
        count: int,
        on_progress: Callable[[ProgressEvent], None],
        cancel: threading.Event,
        model: str | None = None,
    ) -> list[GeneratedAsset]:
        handle = self.engine.options(stream=True, multiplexed_model_id=model or self.model_id)
        stream = handle.run.remote(task, fields, count)
        watcher = asyncio.ensure_future(_wait_for(cancel))
        try:
            async for item in _racing(stream, watcher):
                if "progress" in item:
                    on_progress(ProgressEvent(**item["progress"]))
                elif "failure" in item:
                    _raise_failure(item["failure"])
                else:
                    return [GeneratedAsset(**asset) for asset in item["assets"]]
            if cancel.is_set():
                stream.cancel()
                raise GenerationCancelledError(f"{task} was cancelled")
            raise EngineError("the engine replica ended the job without a result")
        except asyncio.CancelledError:  # the ingress is stopping: the replica stops too
            stream.cancel()
            raise
        except RayError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, AbstractVisionError):  # the replica's own guard (an unknown model)
                raise cause from None
            if cancel.is_set():
                raise GenerationCancelledError(f"{task} was cancelled") from None
            raise EngineError(
                f"the engine replica running this job died or failed ({type(exc).__name__}); Ray replaces "
                "it: submit the job again"
            ) from exc
        finally:
            watcher.cancel()

    async def close(self) -> None:
        return None


# ---- failures between the two ------------------------------------------------------------------
def _failure_item(exc: BaseException) -> dict[str, Any]:
    """A failed run as data that crosses Ray intact, so the ingress's job queue sees what a plain
    server's sees: the cause (whose type picks the HTTP status) and, for a batch, the items made.

    Why not raise it: Ray pickles a raised exception without its ``__cause__``, and a
    :class:`BatchGenerationError` (keyword-only fields) does not unpickle at all.
    """
    kept: list[dict[str, Any]] = []
    batch: dict[str, Any] | None = None
    cause = exc
    if isinstance(exc, BatchGenerationError):
        kept = [dataclasses.asdict(asset) for asset in exc.results if isinstance(asset, GeneratedAsset)]
        batch = {"message": str(exc), "failed_index": exc.failed_index, "seed": exc.seed}
        cause = exc.__cause__ or exc
    return {"error": _portable(cause), "batch": batch, "kept": kept}


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling; else an error of the same kind (library or not) with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        text = f"{type(exc).__name__}: {exc}"
        return EngineError(text) if isinstance(exc, AbstractVisionError) else RuntimeError(text)


def _raise_failure(failure: dict[str, Any]) -> None:
    """The ingress's side of :func:`_failure_item`: raise what the engine raised."""
    cause = failure["error"]
    batch = failure["batch"]
    if batch is None:
        raise cause
    kept = [GeneratedAsset(**asset) for asset in failure["kept"]]
    raise BatchGenerationError(
        batch["message"], results=kept, failed_index=batch["failed_index"], seed=batch["seed"]
    ) from cause


def _ignore_outcome(future: asyncio.Future) -> None:
    """Mark a future's exception as seen (asyncio logs unseen ones) once it is done."""
    if future.done():
        if not future.cancelled():
            future.exception()
    else:
        future.add_done_callback(_ignore_outcome)


async def _wait_for(event: threading.Event) -> None:
    while not event.is_set():
        await asyncio.sleep(_CANCEL_POLL_S)


async def _racing(stream: Any, watcher: asyncio.Future) -> AsyncIterator[dict[str, Any]]:
    """Items of a Ray response stream until it ends or ``watcher`` (cancel) fires."""
    iterator = stream.__aiter__()
    while True:
        step = asyncio.ensure_future(iterator.__anext__())
        await asyncio.wait({step, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not step.done():
            step.cancel()
            _ignore_outcome(step)  # Ray answers a cancelled read with RequestCancelledError
            return
        try:
            yield step.result()
        except StopAsyncIteration:
            return


# ---- the ingress -------------------------------------------------------------------------------
class Gateway:
    """The FastAPI app of the plain server, with a :class:`RayRunner` as its runner."""

    def __init__(self, engine: Any, deployment: RayDeployment):
        self.engine = engine
        self.deployment = deployment

    def __serve_build_asgi_app__(self) -> Any:
        from .app import create_app
        from .service import ImageService
        from .settings import ServerConfig

        config = ServerConfig(**self.deployment.server)
        runner = RayRunner(self.engine, self.deployment)
        service = ImageService(config, runner, backend_name=self.deployment.provider, local_engine=False)
        service.queue.concurrency = config.concurrency or self.deployment.ray.most_replicas
        return create_app(service)


def build_application(deployment: RayDeployment) -> Any:
    """The Ray Serve application: the ingress bound to the engine deployment."""
    options = deployment.ray
    gpus = options.gpus_per_replica if options.gpus_per_replica is not None else _default_gpus()
    actor_options: dict[str, Any] = {"num_cpus": options.cpus_per_replica, "num_gpus": gpus}
    engine_options: dict[str, Any] = {
        "name": "abstractvision-engine",
        "ray_actor_options": actor_options,
        "max_ongoing_requests": 1,  # one generation per replica at a time; Ray queues the rest
        "health_check_period_s": 5,
        "graceful_shutdown_timeout_s": float(deployment.server.get("grace_s", 30.0)),
    }
    scaling = options.autoscaling
    if scaling:
        engine_options["autoscaling_config"] = scaling
    else:
        engine_options["num_replicas"] = options.replicas
    engine = serve.deployment(EngineReplica).options(**engine_options)
    gateway = serve.deployment(serve.ingress()(Gateway)).options(
        name="abstractvision-gateway", num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000
    )
    return gateway.bind(engine.bind(deployment), deployment)


def app(args: Mapping[str, str]) -> Application:
    """The application builder for ``serve run abstractvision.server.ray:app key=value ...``, ``serve
    deploy`` files and KubeRay: keys are the ``serve --ray`` flags' names with underscores
    (``provider``, ``model`` (comma list), ``replicas``, ``gpus_per_replica``, ``api_keys``...) and any
    setting of the backend (``device``, ``torch_dtype``...) or of the server (``max_queue``...)."""
    return build_application(deployment_from_args(args))


def _default_gpus() -> float:
    """A whole GPU per replica where the cluster has GPUs, else none.

    Why it refuses without a connection: ``serve run`` calls the builder before it connects to Ray,
    so the cluster cannot be seen, and guessing "no GPU" would put every replica on the CPU.
    """
    import ray

    if not ray.is_initialized():
        raise BackendNotConfiguredError(
            "gpus_per_replica= is required here: the application is built before Ray is connected, so "
            "the cluster's GPUs cannot be seen (gpus_per_replica=1 for a GPU each, 0 for CPU only)"
        )
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _limit_gpu_memory(gigabytes: float) -> None:
    """Hold torch (the Diffusers engine) to ``gigabytes`` of this replica's GPU: Ray shares a GPU by
    the fraction asked, never by memory, so a replica must keep to the budget it stated itself."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, gigabytes * 1024**3 / total), 0)
        log.info("GPU memory held to %.1f GB of %.1f GB", gigabytes, total / 1024**3)


__all__ = ["APP_NAME", "EngineReplica", "Gateway", "RayRunner", "app", "build_application"]
