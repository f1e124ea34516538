"""OpenAI's Images/Videos API, or any service exposing OpenAI-shaped endpoints, as a backend.

Inference stays out of process: this module shapes requests (:mod:`._openai_shapes`), sends them
(:mod:`._http`) and reads the answers (:mod:`._openai_responses`). Each task is written once as a
request generator that the transport drives with ``httpx.Client`` (sync) or ``httpx.AsyncClient``
(the manager's async methods), so the two paths cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..config import clean_secret, setting
from ..errors import (
    BackendNotConfiguredError,
    InvalidProviderResponseError,
    ProviderError,
    RequestTimeoutError,
)
from ..media import sniff_mime_type
from ..progress import ProgressReporter, as_reporter
from ..redaction import is_secret_name, redact_url
from ..types import (
    IMAGE_TASKS,
    GeneratedAsset,
    ImageEditRequest,
    ImageGenerationRequest,
    ImageToVideoRequest,
    ProviderAdapterInfo,
    ProviderModelInfo,
    VideoGenerationRequest,
    VisionBackendCapabilities,
)
from ._http import HttpCall, HttpResponse, HttpTransport, Operation, Wait
from ._openai_catalog import filter_models, parse_catalog
from ._openai_dialects import (
    DIALECT_NAMES,
    SDAPI_IMG2IMG,
    SDAPI_TXT2IMG,
    Dialect,
    ServerProfile,
    detect,
    sdapi_img2img,
    sdapi_payload,
    sdapi_txt2img,
    server_root,
    translate,
)
from ._openai_loras import listed_adapters, server_loras, takes_adapters
from ._openai_responses import (
    checked_media,
    decode_b64,
    download_call,
    media_items,
    png_size,
    provenance,
    streamed_payload,
)
from ._openai_sdcpp_jobs import SUBMIT_PATH, native_body, run_job
from ._openai_shapes import (
    SORA,
    Shaped,
    edit_files,
    family_for,
    file_part,
    form_fields,
    image_b64,
    is_openai_host,
    json_body,
    shape_fields,
    video_fields,
)
from .base_backend import ProgressArg, VisionBackend, batch_failure

IMAGE_TO_VIDEO_MODES = ("multipart", "json_b64")

#: OpenAI's own API: where a user who names OpenAI without a base URL is sent (CLI ``--openai``, AbstractCore).
OPENAI_API_URL = "https://api.openai.com/v1"

#: Job states that mean "poll again" in OpenAI's asynchronous video API.
_PENDING_JOB_STATES = ("queued", "in_progress", "processing", "pending")

#: Chunk size for ``n`` on endpoints that do not publish a limit.
_DEFAULT_MAX_N = 10

_log = logging.getLogger("abstractvision.backends.openai")

#: How often a call waits for another call's server probe to finish (the first call of a backend).
_PROBE_WAIT_S = 0.02


@dataclass(frozen=True)
class OpenAICompatibleBackendConfig:
    """Settings of one OpenAI-compatible service. ``api_key`` never appears in ``repr``.

    Paths are relative to ``base_url`` (a ``/v1``-style root). Video is opt-in: ``text_to_video``
    needs ``text_to_video_path`` and ``image_to_video`` needs ``image_to_video_path``; set them to
    ``/videos`` for OpenAI's asynchronous video jobs.
    """

    #: The REPL's ``/backend NAME VALUE...`` shorthands: which fields the positional words set.
    positional_forms: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("base_url",),
        ("base_url", "api_key"),
        ("base_url", "api_key", "model_id"),
    )

    base_url: str | None = setting(
        env=("ABSTRACTVISION_BASE_URL", "ABSTRACTCORE_VISION_BASE_URL", "OPENAI_BASE_URL"),
        help="OpenAI-compatible service URL, e.g. http://127.0.0.1:8000/v1.",
        url=True,
    )
    api_key: str | None = setting(
        env=("ABSTRACTVISION_API_KEY", "ABSTRACTCORE_VISION_API_KEY", "OPENAI_API_KEY"),
        help="API key for the service (prefer the environment variable to the flag).",
        secret=True,
    )
    model_id: str | None = setting(
        env=("ABSTRACTVISION_MODEL_ID", "ABSTRACTCORE_VISION_MODEL_ID", "ABSTRACTCORE_VISION_UPSTREAM_MODEL_ID"),
        flag="--model",
        help="Model id the service knows (gpt-image-1, dall-e-3, a local server's model name).",
    )
    timeout_s: float = setting(
        300.0,
        env=("ABSTRACTVISION_TIMEOUT_S", "ABSTRACTCORE_VISION_TIMEOUT_S"),
        flag="--timeout",
        help="Seconds one exchange (request, retries, downloads) may take.",
    )
    image_generations_path: str = "/images/generations"
    image_edits_path: str = "/images/edits"
    models_path: str = setting(
        "/models",
        env="ABSTRACTVISION_OPENAI_MODELS_PATH",
        deprecated_env=("ABSTRACTVISION_MODELS_PATH", "ABSTRACTCORE_VISION_MODELS_PATH"),
        help="URL path of the service's model catalog, relative to the base URL.",
    )
    text_to_video_path: str | None = setting(
        env="ABSTRACTVISION_TEXT_TO_VIDEO_PATH", help="URL path for text->video (/videos for OpenAI's video jobs)."
    )
    image_to_video_path: str | None = setting(
        env="ABSTRACTVISION_IMAGE_TO_VIDEO_PATH", help="URL path for image->video (/videos for OpenAI's video jobs)."
    )
    image_to_video_mode: str = setting(
        "multipart",
        env="ABSTRACTVISION_IMAGE_TO_VIDEO_MODE",
        help="How image->video sends the image: multipart or json_b64.",
    )
    max_retries: int = setting(
        2, env="ABSTRACTVISION_MAX_RETRIES", help="Retries of a failed HTTP request (429, 5xx, connection)."
    )
    dialect: str = setting(
        "auto",
        env=("ABSTRACTVISION_OPENAI_DIALECT", "ABSTRACTVISION_DIALECT"),
        help="How controls and edits travel: auto, " + ", ".join(DIALECT_NAMES[1:]) + " (auto asks the server once).",
    )
    strict_params: bool = setting(
        False,
        env="ABSTRACTVISION_STRICT_PARAMS",
        help="Refuse portable controls (seed, steps, ...) the service cannot take instead of dropping them.",
    )
    organization: str | None = setting(
        env=("OPENAI_ORG_ID", "OPENAI_ORGANIZATION"), help="OpenAI organization id (sent only to the service)."
    )
    project: str | None = setting(
        env=("OPENAI_PROJECT_ID", "OPENAI_PROJECT"), help="OpenAI project id (sent only to the service)."
    )
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_response_bytes: int = 256 * 1024 * 1024
    poll_interval_s: float = 2.0
    job_timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_key", clean_secret(self.api_key, "api_key"))
        if not self.base_url:
            raise BackendNotConfiguredError(
                "the openai backend needs a base URL: pass base_url=... (CLI: --base-url) or set "
                "OPENAI_BASE_URL / ABSTRACTVISION_BASE_URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1"
            )
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BackendNotConfiguredError(
                f"base_url={redact_url(self.base_url)!r} must be an http(s) URL such as https://host/v1"
            )
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.image_to_video_mode not in IMAGE_TO_VIDEO_MODES:
            raise BackendNotConfiguredError(
                f"image_to_video_mode={self.image_to_video_mode!r}: use one of {', '.join(IMAGE_TO_VIDEO_MODES)}"
            )
        for name in ("timeout_s", "poll_interval_s", "job_timeout_s", "max_response_bytes"):
            if not getattr(self, name) > 0:
                raise BackendNotConfiguredError(f"{name}={getattr(self, name)!r} must be positive")
        object.__setattr__(self, "dialect", str(self.dialect).strip().lower())
        if self.dialect not in DIALECT_NAMES:
            raise BackendNotConfiguredError(f"dialect={self.dialect!r}: use one of {', '.join(DIALECT_NAMES)}")
        if self.max_retries < 0:
            raise BackendNotConfiguredError(f"max_retries={self.max_retries!r} must not be negative")

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"


class OpenAICompatibleVisionBackend(VisionBackend):
    """Images (generations, edits), opt-in video, and the ``/models`` catalog of one service.

    One pooled ``httpx`` client per instance, shared safely by threads; pass ``http_client`` /
    ``async_http_client`` to use your own (proxies, TLS settings, test transports). ``timeout_s`` is
    held per byte on the clients the backend creates and on any async client; a caller's sync client
    gets the time left as its httpx timeouts and a check between body chunks (httpx restarts its read
    timeout on every byte, so a server dripping bytes can hold such a client past ``timeout_s``).

    Close it with :meth:`close` / ``with``, or :meth:`aclose` / ``async with`` after async calls.
    """

    name = "openai"
    config_class = OpenAICompatibleBackendConfig

    def __init__(
        self,
        config: OpenAICompatibleBackendConfig | None = None,
        *,
        http_client: Any = None,
        async_http_client: Any = None,
    ):
        self.config = config if config is not None else OpenAICompatibleBackendConfig()
        self.family = family_for(self.config.model_id, self.config.base_url)
        credentials = dict(self.config.extra_headers)  # every configured header is a credential
        if self.config.organization:
            credentials["OpenAI-Organization"] = self.config.organization
        if self.config.project:
            credentials["OpenAI-Project"] = self.config.project
        key = self.config.api_key
        if key:
            credentials["Authorization"] = f"Bearer {key}"
        secret_headers = [value for name, value in self.config.extra_headers.items() if is_secret_name(name)]
        self._transport = HttpTransport(
            origin=self.config.base_url,  # type: ignore[arg-type]
            credentials=credentials,
            timeout_s=self.config.timeout_s,
            max_retries=self.config.max_retries,
            max_response_bytes=self.config.max_response_bytes,
            secrets=(key, *secret_headers),
            client=http_client,
            async_client=async_http_client,
        )
        #: OpenAI's own service or model: ``auto`` picks the openai dialect for it without asking.
        self._openai = self.family.openai or is_openai_host(self.config.base_url)  # type: ignore[arg-type]
        self._capabilities = self._declared_capabilities()
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()
        self._server: ServerProfile | None = None
        self._probe_lock = threading.Lock()

    # ---- capabilities and lifecycle -----------------------------------------------------------
    def get_capabilities(self) -> VisionBackendCapabilities:
        """The declared capabilities; LoRA turns off once ``auto`` has found a server that takes no adapters."""
        if self._capabilities.supports_lora and self._server is not None and not takes_adapters(self._server):
            return dataclasses.replace(self._capabilities, supports_lora=False)
        return self._capabilities

    def _declared_capabilities(self) -> VisionBackendCapabilities:
        """Fixed by the (frozen) config: the image tasks the model's family does, video where its path is set."""
        tasks = [task for task in IMAGE_TASKS if task in self.family.tasks]
        if self.config.text_to_video_path:
            tasks.append("text_to_video")
        if self.config.image_to_video_path:
            tasks.append("image_to_video")
        return VisionBackendCapabilities(
            supported_tasks=tuple(tasks),
            supports_mask=self.family.edits,
            supports_seed=self.config.dialect != "openai" and not (self.config.dialect == "auto" and self._openai),
            # LoRA: sd-server (its structured lora list) and abstractvision serve (its lora field); auto may
            # find one, until its probe says otherwise
            supports_lora=self.config.dialect in ("sdcpp", "abstractvision")
            or (self.config.dialect == "auto" and not self._openai),
        )

    def close(self) -> None:
        """Close the connection pools (a caller's client is left open); the next call opens a new one."""
        self._transport.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaiting the async client of the running event loop."""
        await self._transport.aclose()

    def list_provider_models(self, task: str | None = None) -> list[ProviderModelInfo]:
        """``GET {base_url}{models_path}``, filtered to ``task``. Never changes the configured model."""
        url = self.config.url(self.config.models_path)
        openai = is_openai_host(self.config.base_url)
        response = self._transport.send(HttpCall("GET", url))
        models = parse_catalog(response.json(), response.url, openai)
        return filter_models(models, task, openai)

    def list_provider_adapters(self) -> list[ProviderAdapterInfo]:
        """The server's adapters: ``abstractvision serve``'s ``GET /v1/adapters``, sd-server's ``GET /sdapi/v1/loras``
        (files under its ``--lora-model-dir``); ``[]`` for a
        server that takes none. Asks the server for its dialect first when ``auto`` has not yet."""
        return self._transport.drive(self._adapters())

    def _adapters(self) -> Operation:
        server: ServerProfile = yield from self._profile()
        if not takes_adapters(server):
            return []
        return (yield from listed_adapters(server_root(self.config.base_url), server))  # type: ignore[arg-type]

    # ---- tasks: plain forms delegate to the progress forms ------------------------------------
    def generate_image(self, request: ImageGenerationRequest) -> GeneratedAsset:
        return self.generate_image_with_progress(request)

    def edit_image(self, request: ImageEditRequest) -> GeneratedAsset:
        return self.edit_image_with_progress(request)

    def generate_video(self, request: VideoGenerationRequest) -> GeneratedAsset:
        return self.generate_video_with_progress(request)

    def image_to_video(self, request: ImageToVideoRequest) -> GeneratedAsset:
        return self.image_to_video_with_progress(request)

    def generate_image_with_progress(self, request, progress_callback: ProgressArg = None) -> GeneratedAsset:
        return self.run("text_to_image", request, progress_callback)

    def edit_image_with_progress(self, request, progress_callback: ProgressArg = None) -> GeneratedAsset:
        return self.run("image_to_image", request, progress_callback)

    def generate_video_with_progress(self, request, progress_callback: ProgressArg = None) -> GeneratedAsset:
        return self.run("text_to_video", request, progress_callback)

    def image_to_video_with_progress(self, request, progress_callback: ProgressArg = None) -> GeneratedAsset:
        return self.run("image_to_video", request, progress_callback)

    # ---- the manager's entry points: one request generator, two drivers ------------------------
    def run(self, task: str, request: Any, progress_callback: ProgressArg = None) -> Any:
        reporter = as_reporter(progress_callback, task)
        return self._transport.drive(self._task(task, request, reporter), reporter)

    async def arun(self, task: str, request: Any, progress_callback: ProgressArg = None) -> Any:
        reporter = as_reporter(progress_callback, task)
        return await self._transport.adrive(self._task(task, request, reporter), reporter)

    def run_batch(self, task: str, requests: Sequence[Any], progress_callback: ProgressArg = None) -> list[Any]:
        """Uses the provider's ``n`` when the seeds need not differ per item, else one call per item."""
        reporter = as_reporter(progress_callback, task)
        return self._transport.drive(self._batch(task, requests, reporter), reporter)

    async def arun_batch(self, task: str, requests: Sequence[Any], progress_callback: ProgressArg = None) -> list[Any]:
        reporter = as_reporter(progress_callback, task)
        return await self._transport.adrive(self._batch(task, requests, reporter), reporter)

    # ---- request generators ----------------------------------------------------------------------
    def _task(self, task: str, request: Any, reporter: ProgressReporter) -> Operation:
        if task not in self._capabilities.supported_tasks:
            raise self._unsupported(task)
        reporter.start()
        if task in IMAGE_TASKS:
            assets = yield from self._images(task, request, reporter)
        else:
            assets = yield from self._video(task, request, reporter)
        reporter.end()
        return assets[0]

    def _batch(self, task: str, requests: Sequence[Any], reporter: ProgressReporter) -> Operation:
        results: list[GeneratedAsset] = []
        native = self._native_n(task, requests)
        while len(results) < len(requests):
            index = len(results)
            try:
                if native:
                    reporter.start()
                    wanted = min(len(requests) - index, self.family.max_n or _DEFAULT_MAX_N)
                    made = yield from self._images(task, requests[index], reporter, n=wanted)
                    results += made[:wanted]
                    reporter.end()
                else:
                    results.append((yield from self._task(task, requests[index], reporter)))
            except Exception as exc:
                raise batch_failure(task, requests, index, results, exc) from exc
        return results

    def _native_n(self, task: str, requests: Sequence[Any]) -> bool:
        """``n`` only when every item is the same request with no seed, and the model takes ``n``."""
        if task not in IMAGE_TASKS or len(requests) < 2 or self.family.max_n == 1:
            return False
        first = requests[0]
        streaming = first.extra.get("stream") or first.extra.get("partial_images")
        return not streaming and all(r.seed is None and r == first for r in requests)

    def _dropped(self, shaped: Shaped) -> dict[str, Any]:
        """The metadata saying what a request lost on the way; one warning per backend and field, not per call."""
        notes: dict[str, Any] = {}
        if shaped.ignored:
            notes["ignored_params"] = sorted(shaped.ignored)
        if shaped.requested_size:
            notes["requested_size"] = shaped.requested_size
        new = [name for name in notes.get("ignored_params", ()) if name not in self._warned]
        if shaped.requested_size and "size" not in self._warned:
            new.append("size")
        if new:
            with self._warned_lock:
                new = [name for name in new if name not in self._warned]
                self._warned.update(new)
            for name in new:
                what = "mapped to the nearest size it takes" if name == "size" else "dropped"
                _log.warning(
                    "%s does not take %s: %s (see metadata; strict_params=True refuses instead)",
                    self.config.model_id or self.family.name,
                    "width/height" if name == "size" else name,
                    what,
                )
        return notes

    def _profile(self) -> Operation:
        """The server's dialect (and sd-server's other APIs), learned on the first image call and kept.

        Never blocks a thread or an event loop: a call that finds another one probing waits in short
        :class:`Wait` steps (which see the caller's cancel) until the profile is there.
        """
        while self._server is None:
            if not self._probe_lock.acquire(blocking=False):
                yield Wait(_PROBE_WAIT_S)
                continue
            try:
                if self._server is None:
                    models_url = self.config.url(self.config.models_path)
                    base_url = self.config.base_url
                    self._server = yield from detect(self.config.dialect, base_url, models_url, self._openai)
            finally:
                self._probe_lock.release()
        return self._server

    def _images(self, task: str, request: Any, reporter: ProgressReporter, n: int | None = None) -> Operation:
        model = self.config.model_id or self.family.name
        shaped = shape_fields(self.family, request, self.config.model_id, n=n, strict=self.config.strict_params)
        files = edit_files(self.family, request, self.config.model_id) if task == "image_to_image" else None
        if self._server is None and files:  # a request no server could read is refused before the probe too
            form_fields(shaped.fields)
        elif self._server is None:
            json_body(shaped.fields)
        server: ServerProfile = yield from self._profile()
        dialect = server.dialect
        fields, wire, dropped = translate(dialect, shaped.fields, strict=self.config.strict_params, model=model)
        shaped.ignored += dropped
        adapters = getattr(request, "lora_adapters", ())
        root = server_root(self.config.base_url)  # type: ignore[arg-type]
        lora = (yield from server_loras(root, server, adapters)) if adapters else None
        route = server.route(task, lora=bool(lora))
        if lora and route == "openai":  # abstractvision serve: its own lora field, on /v1
            wire = {**wire, "lora": lora}
        if route != "openai":
            notes = self._notes(shaped, dialect)
            return (yield from self._sdcpp_api(route, task, request, fields, reporter, notes, lora))
        if task == "image_to_image":
            path = self.config.image_edits_path
            if dialect.image_field:
                files = edit_files(self.family, request, self.config.model_id, dialect.image_field)
            call = HttpCall("POST", self.config.url(path), data=form_fields(wire), files=files)
        else:
            path = self.config.image_generations_path
            call = HttpCall("POST", self.config.url(path), json=json_body(wire))
        if wire.get("stream"):
            call = dataclasses.replace(call, on_event=_preview_sink(reporter, wire.get("partial_images")))
        response = yield call
        return (yield from self._assets(response, fields, path, "image", self._notes(shaped, dialect)))

    def _sdcpp_api(
        self,
        route: str,
        task: str,
        request: Any,
        fields: dict[str, Any],
        reporter: ProgressReporter,
        notes: dict,
        lora: list[dict[str, Any]] | None = None,
    ) -> Operation:
        """sd-server beyond ``/v1``: its native job API (``native``) or its A1111 API (``sdapi``: img2img,
        and txt2img for a generation with adapters); ``lora`` goes in the body as it is."""
        root = server_root(self.config.base_url)  # type: ignore[arg-type]
        edit = task == "image_to_image"
        image = image_b64(request.image) if edit else None
        mask = image_b64(request.mask) if edit and request.mask is not None else None
        with_lora = {"lora": lora} if lora else {}
        notes = {**notes, **with_lora}
        if route == "native":
            body = {**native_body(fields, image, mask), **with_lora}
            interval, limit = self.config.poll_interval_s, self.config.job_timeout_s
            payload, response, job_id, job_s = yield from run_job(root, body, reporter, interval, limit)
            notes = {**notes, "job_id": job_id, "job_s": job_s}
            return (yield from self._assets(response, fields, SUBMIT_PATH, "image", notes, payload))
        if edit:
            size = png_size(request.image) if sniff_mime_type(request.image) == "image/png" else None
            path, body = SDAPI_IMG2IMG, sdapi_img2img(fields, image, mask, size)  # type: ignore[arg-type]
        else:
            path, body = SDAPI_TXT2IMG, sdapi_txt2img(fields)
        response = yield HttpCall("POST", f"{root}{path}", json=json_body({**body, **with_lora}))
        payload = sdapi_payload(response.json(), response.url)
        return (yield from self._assets(response, fields, path, "image", notes, payload))

    def _notes(self, shaped: Shaped, dialect: Dialect) -> dict[str, Any]:
        return {**self._dropped(shaped), "dialect": dialect.name}

    def _assets(
        self,
        response: HttpResponse,
        fields: dict[str, Any],
        path: str,
        kind: str,
        notes: dict[str, Any],
        payload: Any = None,
    ) -> Operation:
        if payload is None:
            payload = streamed_payload(response.events, response.url) if response.events else response.json()
        assets = []
        elapsed = response.elapsed_s
        for index, item in enumerate(media_items(payload, response.url)):
            source = f"{response.url} data[{index}]"
            if item.get("b64_json"):
                data = decode_b64(item["b64_json"], source)
            else:
                download = yield download_call(item["url"])
                data, elapsed = download.content, elapsed + download.elapsed_s
            mime = checked_media(data, source, kind)
            metadata = {**provenance(fields, payload, item, path), **notes, "http_s": round(elapsed, 4)}
            assets.append(GeneratedAsset(kind, data, mime, metadata))  # type: ignore[arg-type]
        return assets

    def _video(self, task: str, request: Any, reporter: ProgressReporter) -> Operation:
        shaped = video_fields(self.family, request, self.config.model_id, strict=self.config.strict_params)
        fields, notes = shaped.fields, self._dropped(shaped)
        path = self.config.text_to_video_path if task == "text_to_video" else self.config.image_to_video_path
        url = self.config.url(path)  # type: ignore[arg-type]
        if task == "text_to_video":
            call = HttpCall("POST", url, json=json_body(fields))
        elif self.family is SORA or self.config.image_to_video_mode == "multipart":
            part = "input_reference" if self.family is SORA else "image"
            call = HttpCall("POST", url, data=form_fields(fields), files=[file_part(part, request.image, "image")])
        else:
            call = HttpCall("POST", url, json=json_body({**fields, "image": image_b64(request.image)}))
        response = yield call
        payload = response.json()
        if isinstance(payload, dict) and "data" not in payload and payload.get("id") and payload.get("status"):
            asset = yield from self._video_job(url, payload, fields, path, reporter)  # type: ignore[arg-type]
            asset.metadata.update(notes)
            return [asset]
        return (yield from self._assets(response, fields, path, "video", notes))  # type: ignore[arg-type]

    def _video_job(
        self, url: str, job: dict[str, Any], fields: dict[str, Any], path: str, reporter: ProgressReporter
    ) -> Operation:
        """OpenAI's asynchronous video: poll ``{url}/{id}`` (bounded) then fetch ``{url}/{id}/content``."""
        job_id = job["id"]
        started = time.monotonic()
        while job.get("status") in _PENDING_JOB_STATES:
            progress = job.get("progress")
            step = int(progress) if isinstance(progress, (int, float)) else None
            reporter.report("step", step=step, total_steps=100, message=f"video job {job_id} {job['status']}")
            if time.monotonic() - started >= self.config.job_timeout_s:
                raise RequestTimeoutError(
                    f"video job {job_id} was still {job['status']} after job_timeout_s={self.config.job_timeout_s}",
                    timeout_s=self.config.job_timeout_s,
                )
            yield Wait(self.config.poll_interval_s)
            polled = yield HttpCall("GET", f"{url}/{job_id}")
            job = polled.json()
            if not isinstance(job, dict):
                raise InvalidProviderResponseError(f"{polled.url} answered {str(job)[:200]!r}", status=200)
        if job.get("status") != "completed":
            error = job.get("error") if isinstance(job.get("error"), dict) else {}
            message = error.get("message") or error.get("code") or "no reason given"
            raise ProviderError(
                f"video job {job_id} ended {job.get('status')!r}: {message}", provider_message=message, status=None
            )
        content = yield HttpCall("GET", f"{url}/{job_id}/content", continues=True)  # the result's download
        mime = checked_media(content.content, content.url, "video")
        metadata = provenance({**fields, "seconds": job.get("seconds"), "size": job.get("size")}, {}, {}, path)
        metadata.update(video_id=job_id, job_s=round(time.monotonic() - started, 3))
        if job.get("created_at") is not None:
            metadata["created"] = job["created_at"]
        return GeneratedAsset("video", content.content, mime, metadata)


def _preview_sink(reporter: ProgressReporter, partials: Any):
    """Turns streamed ``*.partial_image`` events into ``preview`` progress events."""
    total = partials if isinstance(partials, int) and partials > 0 else None

    def on_event(event: dict[str, Any]) -> None:
        if str(event.get("type", "")).endswith("partial_image") and event.get("b64_json"):
            index = event.get("partial_image_index")
            step = index + 1 if isinstance(index, int) else None
            preview = decode_b64(event["b64_json"], "partial image")
            reporter.report("preview", step=step, total_steps=total, preview=preview)

    return on_event


__all__ = ["IMAGE_TO_VIDEO_MODES", "OPENAI_API_URL", "OpenAICompatibleBackendConfig", "OpenAICompatibleVisionBackend"]
