"""Local stable-diffusion.cpp: single-file SD checkpoints and GGUF models, with no Python ML stack.

Two ways to run the same engine, chosen by ``mode``:

* ``cli``: one ``sd-cli`` process per image (see :mod:`._sdcpp_cli`). Preferred by ``auto``
  because release and self-built ``sd-cli`` binaries carry GPU backends (CUDA, Metal, Vulkan).
* ``python``: the ``stable-diffusion-cpp-python`` bindings (``abstractvision[sdcpp]``), loaded once
  and reused (see :mod:`._sdcpp_python`); faster for repeated calls because the model stays loaded.

Nothing is ever downloaded: model files are local paths, and a missing engine is an
:class:`OptionalDependencyMissingError` that says how to install either one.

Upscaling (``image_upscale``, offered when ``upscale_model`` names an ESRGAN-family file) runs
``sd-cli -M upscale`` (no diffusion model needed) or the bindings' upscaler, ``upscale_repeats``
passes, then resizes to the requested size (:mod:`._upscale`).

LoRA adapters (``lora_adapters``) are files: a path, or a name in ``lora_dir``; each call gets its
own folder of links and prompt tags built by the backend (:mod:`._sdcpp_lora`), in both modes.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..config import setting
from ..errors import (
    BackendNotConfiguredError,
    CapabilityNotSupportedError,
    InvalidRequestError,
    ModelNotAvailableError,
    OptionalDependencyMissingError,
)
from ..lora import adapter_files
from ..progress import as_reporter
from ..types import (
    IMAGE_TASKS,
    GeneratedAsset,
    ImageEditRequest,
    ImageGenerationRequest,
    ImageUpscaleRequest,
    ProviderAdapterInfo,
    ProviderModelInfo,
    VisionBackendCapabilities,
)
from ..validation import random_seed
from ._sdcpp_job import (
    COMPONENTS,
    DEFAULT_STEPS,
    DEFAULT_STRENGTH,
    MAX_SIZE,
    MODEL_FILES,
    SINGLE_FILE,
    SdcppJob,
    SdcppModelLayout,
    check_size,
    check_strength,
    check_text,
    plain_options,
    text_fields,
)
from ._sdcpp_lora import SUFFIXES as LORA_SUFFIXES
from ._sdcpp_lora import link_adapters, refuse_tags, resolve_adapters
from ._sdcpp_upscale import SdcppUpscaler
from .base_backend import UPSCALE_TASK, ProgressArg, VisionBackend, replace_request

MODES = ("auto", "cli", "python")
#: Files a models directory may hold that sd.cpp can load.
MODEL_SUFFIXES = (".gguf", ".safetensors", ".ckpt")
_MODEL_FIELDS = tuple(name for name, _, _ in MODEL_FILES)
_ENV_PREFIX = "ABSTRACTVISION_SDCPP_"
#: Most upscaler passes: an x4 model 4 times is already x256.
_MAX_UPSCALE_REPEATS = 4
UPSCALER_HINT = (
    f"set upscale_model= (--upscale-model, {_ENV_PREFIX}UPSCALE_MODEL) to an ESRGAN-family file such as "
    "RealESRGAN_x4plus.pth"
)


@dataclass(frozen=True)
class StableDiffusionCppBackendConfig:
    """Where the engine and the model files are.

    ``model`` is a single-file checkpoint (SD 1.x/2.x/XL ``.safetensors``/``.ckpt``/``.gguf``);
    component models (FLUX, Qwen-Image, SD3) give ``diffusion_model`` plus ``vae`` and their text
    encoders (``llm``/``llm_vision``, ``clip_l``/``clip_g``/``t5xxl``). Relative paths are relative
    to ``cwd`` (default: the current directory). ``extra_args`` go to sd-cli verbatim (a string is
    split like a shell would). ``timeout_s`` kills an sd-cli run that takes longer (CLI mode only: the
    bindings' C call cannot be interrupted).
    """

    #: The REPL's ``/backend NAME VALUE...`` shorthands: which fields the positional words set.
    positional_forms: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("model",),
        ("model", "sd_cli_path"),
        ("diffusion_model", "vae", "llm"),
        ("diffusion_model", "vae", "llm", "sd_cli_path"),
    )

    model: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_MODEL", "ABSTRACTCORE_VISION_SDCPP_MODEL"),
        flag="--model",
        help="Single-file checkpoint (.safetensors, .ckpt or .gguf).",
    )
    diffusion_model: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_DIFFUSION_MODEL", "ABSTRACTCORE_VISION_SDCPP_DIFFUSION_MODEL"),
        flag="--diffusion-model",
        help="Diffusion model file (GGUF) of a split model (FLUX, Qwen-Image, SD3).",
    )
    vae: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_VAE", "ABSTRACTCORE_VISION_SDCPP_VAE"),
        flag="--vae",
        help="VAE file.",
    )
    llm: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_LLM", "ABSTRACTCORE_VISION_SDCPP_LLM"),
        flag="--llm",
        help="Text-encoder LLM file (Qwen-Image, FLUX.2).",
    )
    llm_vision: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_LLM_VISION", "ABSTRACTCORE_VISION_SDCPP_LLM_VISION"),
        flag="--llm-vision",
        help="Vision projector of the LLM.",
    )
    clip_l: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_CLIP_L", "ABSTRACTCORE_VISION_SDCPP_CLIP_L"),
        flag="--clip-l",
        help="CLIP-L text encoder file.",
    )
    clip_g: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_CLIP_G", "ABSTRACTCORE_VISION_SDCPP_CLIP_G"),
        flag="--clip-g",
        help="CLIP-G text encoder file.",
    )
    t5xxl: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_T5XXL", "ABSTRACTCORE_VISION_SDCPP_T5XXL"),
        flag="--t5xxl",
        help="T5-XXL text encoder file.",
    )
    sd_cli_path: str = setting(
        "sd-cli",
        env=("ABSTRACTVISION_SDCPP_BIN", "ABSTRACTVISION_SDCPP_CLI", "ABSTRACTCORE_VISION_SDCPP_BIN"),
        flag="--sd-cli",
        help="Path or name of the stable-diffusion.cpp sd-cli executable.",
    )
    mode: str = setting(
        "auto",
        env="ABSTRACTVISION_SDCPP_MODE",
        flag="--sd-mode",
        help="auto, cli (sd-cli, GPU builds) or python (the bindings, model kept loaded).",
    )
    extra_args: tuple[str, ...] = setting(
        (),
        env=("ABSTRACTVISION_SDCPP_EXTRA_ARGS", "ABSTRACTCORE_VISION_SDCPP_EXTRA_ARGS"),
        help='Extra sd-cli arguments, split like a shell would, e.g. "--sampling-method euler".',
    )
    timeout_s: float | None = setting(
        env="ABSTRACTVISION_SDCPP_TIMEOUT_S",
        flag="--timeout",
        help="Seconds before an sd-cli run is killed (CLI mode; no limit by default).",
    )
    cwd: str | None = None
    models_dir: str | None = setting(
        env=("ABSTRACTVISION_SDCPP_MODELS_DIR", "ABSTRACTVISION_MODEL_DIR", "ABSTRACTCORE_VISION_MODEL_DIR"),
        help="A folder of local model files, listed by provider-models.",
    )
    upscale_model: str | None = setting(
        env="ABSTRACTVISION_SDCPP_UPSCALE_MODEL",
        flag="--upscale-model",
        help="ESRGAN-family upscaler file (e.g. RealESRGAN_x4plus .pth/.safetensors); enables image_upscale.",
    )
    upscale_repeats: int = setting(
        1,
        env="ABSTRACTVISION_SDCPP_UPSCALE_REPEATS",
        flag="--upscale-repeats",
        help="Upscaler passes per upscale (an x4 model twice: x16), before resizing to the requested size.",
    )
    lora_dir: str | None = setting(
        env="ABSTRACTVISION_SDCPP_LORA_DIR",
        help="Folder of LoRA files (.safetensors, .gguf, .ckpt, .pt): an adapter may be named by its file name.",
    )

    def __post_init__(self) -> None:
        for name in (*_MODEL_FIELDS, "cwd", "models_dir", "sd_cli_path", "upscale_model", "lora_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        extra = self.extra_args
        object.__setattr__(self, "extra_args", tuple(shlex.split(extra) if isinstance(extra, str) else extra or ()))
        if self.mode not in MODES:
            raise BackendNotConfiguredError(
                f"mode={self.mode!r} is not a stable-diffusion.cpp mode; use one of {', '.join(MODES)} "
                f"({_ENV_PREFIX}MODE)"
            )
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise BackendNotConfiguredError(f"timeout_s={self.timeout_s!r} must be a positive number of seconds")
        repeats = self.upscale_repeats
        if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= _MAX_UPSCALE_REPEATS:
            raise BackendNotConfiguredError(
                f"upscale_repeats={repeats!r} must be an integer from 1 to {_MAX_UPSCALE_REPEATS} "
                f"({_ENV_PREFIX}UPSCALE_REPEATS)"
            )
        if not self.models_dir and not self.upscale_model:  # either is enough to list models or to upscale
            self.require_model()

    @property
    def generates(self) -> bool:
        """Whether a generation model is configured (an upscaler alone only upscales)."""
        return bool(self.model or self.diffusion_model)

    def require_model(self) -> None:
        """Generation needs a model file; listing a models directory does not."""
        if not self.model and not self.diffusion_model:
            raise BackendNotConfiguredError(
                "stable-diffusion.cpp needs a model file: pass model= (a single-file checkpoint, "
                f"{_ENV_PREFIX}MODEL) or diffusion_model= with its vae/text encoders "
                f"({_ENV_PREFIX}DIFFUSION_MODEL, {_ENV_PREFIX}VAE, {_ENV_PREFIX}LLM, ...)"
            )

    @property
    def layout(self) -> SdcppModelLayout:
        return COMPONENTS if self.diffusion_model and not self.model else SINGLE_FILE

    def resolve(self, path: str) -> Path:
        return (Path(self.cwd or os.getcwd()) / Path(path).expanduser()).resolve()

    def model_files(self) -> list[tuple[str, str, str, Path]]:
        """``(field, sd-cli flag, bindings keyword, absolute path)`` of every configured file."""
        return [
            (name, flag, keyword, self.resolve(getattr(self, name)))
            for name, flag, keyword in MODEL_FILES
            if getattr(self, name)
        ]

    def check_files(self) -> None:
        """Fail before any engine work when the model or a configured file is missing, naming it."""
        self.require_model()
        for name, _, _, path in self.model_files():
            _require_file(name, path)

    @property
    def lora_folder(self) -> Path | None:
        """``lora_dir`` as an absolute path (``None`` when unset)."""
        return self.resolve(self.lora_dir) if self.lora_dir else None

    def upscaler_file(self) -> Path:
        """The upscaler's absolute path, once checked to exist (an error naming the setting if not)."""
        if not self.upscale_model:
            raise BackendNotConfiguredError(f"stable-diffusion.cpp has no upscaler: {UPSCALER_HINT}")
        path = self.resolve(self.upscale_model)
        _require_file("upscale_model", path)
        return path


class StableDiffusionCppVisionBackend(VisionBackend):
    """text_to_image and image_to_image (with masks) on stable-diffusion.cpp, via sd-cli or the bindings."""

    name = "sdcpp"
    config_class = StableDiffusionCppBackendConfig

    def __init__(self, config: StableDiffusionCppBackendConfig | None = None, **fields: Any):
        self.config = config if config is not None else StableDiffusionCppBackendConfig(**fields)
        self._engine = None  # BindingsEngine, created on first python-mode use
        self._engine_lock = threading.Lock()
        self._upscaler = SdcppUpscaler(self.config)

    # ---- mode ------------------------------------------------------------------------------------
    def find_sd_cli(self) -> str | None:
        """Absolute path of the configured sd-cli, or ``None`` when it is not there."""
        configured = self.config.sd_cli_path
        if os.sep in configured or (os.altsep and os.altsep in configured):
            path = self.config.resolve(configured)
            return str(path) if path.is_file() and os.access(path, os.X_OK) else None
        return shutil.which(configured)

    @property
    def mode(self) -> str:
        """``cli`` or ``python``: the configured mode, with ``auto`` resolved (sd-cli first)."""
        wanted = self.config.mode
        if wanted in ("auto", "cli") and self.find_sd_cli():
            return "cli"
        if wanted in ("auto", "python") and _bindings_installed():
            return "python"
        raise self._engine_missing(wanted)

    def _engine_missing(self, wanted: str) -> OptionalDependencyMissingError:
        cli = (
            f"put a stable-diffusion.cpp sd-cli on PATH or set sd_cli_path= / {_ENV_PREFIX}BIN (release builds "
            "for CUDA/Metal/Vulkan: https://github.com/leejet/stable-diffusion.cpp/releases, or build it from source)"
        )
        python = 'install the Python bindings: pip install "abstractvision[sdcpp]" (a CPU build, compiled locally)'
        missing = {
            "cli": f"sd-cli was not found (sd_cli_path={self.config.sd_cli_path!r}); {cli}",
            "python": f"mode='python' needs the stable-diffusion.cpp bindings; {python}",
            "auto": f"neither sd-cli ({self.config.sd_cli_path!r}) nor the Python bindings were found; either {cli}, "
            f"or {python}",
        }[wanted]
        return OptionalDependencyMissingError(
            f"stable-diffusion.cpp is not available: {missing}", extra="sdcpp", package="stable-diffusion-cpp-python"
        )

    # ---- capabilities, lifecycle, catalog --------------------------------------------------------
    def get_capabilities(self) -> VisionBackendCapabilities:
        # Seeds: the default 0..2**32-1 is sd.cpp's own range. sd-cli and the bindings take an int64, but
        # its cpu and std_default RNGs (--rng) keep only a seed's low 32 bits, and a negative one means "random".
        # Cancel: sd-cli is killed at once; the 0.4.5 bindings have no abort hook, so a python-mode run
        # that has started finishes first.
        cli = self.config.mode == "cli" or (self.config.mode == "auto" and self.find_sd_cli() is not None)
        tasks = IMAGE_TASKS if self.config.generates or not self.config.upscale_model else ()
        return VisionBackendCapabilities(
            supported_tasks=(*tasks, UPSCALE_TASK) if self.config.upscale_model else tasks,
            supports_mask=True,
            max_width=MAX_SIZE,
            max_height=MAX_SIZE,
            cancels_running=cli,
            supports_lora=bool(tasks),
        )

    def capability_hint(self, task: str) -> str | None:
        return UPSCALER_HINT if task == UPSCALE_TASK and not self.config.upscale_model else None

    def preload(self) -> None:
        """Check the files and the engine; in python mode also load the model and the upscaler (once)."""
        if self.config.generates or not self.config.upscale_model:
            self.config.check_files()
            if self.mode == "python":
                self._bindings_engine().load()
        if self.config.upscale_model:
            self._upscaler.preload(self.mode)

    def unload(self) -> None:
        with self._engine_lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.unload()
        self._upscaler.unload()

    def list_provider_models(self, task: str | None = None) -> list[ProviderModelInfo]:
        """The configured model files that exist, then the models directory's model files."""
        entries: dict[Path, ProviderModelInfo] = {}
        for name, _, _, path in self.config.model_files():
            generates = name in ("model", "diffusion_model")
            if path.is_file():
                entries[path] = _model_info(path, name, IMAGE_TASKS if generates else ())
        if self.config.upscale_model and self.config.resolve(self.config.upscale_model).is_file():
            path = self.config.resolve(self.config.upscale_model)
            entries[path] = _model_info(path, "upscale_model", (UPSCALE_TASK,))
        if self.config.models_dir:
            folder = self.config.resolve(self.config.models_dir)
            found = sorted(folder.iterdir()) if folder.is_dir() else []
            for path in found:
                if path.suffix.lower() in MODEL_SUFFIXES and path.is_file() and path not in entries:
                    entries[path] = _model_info(path, "models_dir", IMAGE_TASKS)
        return [info for info in entries.values() if task is None or task in info.capabilities]

    def list_provider_adapters(self) -> list[ProviderAdapterInfo]:
        """The LoRA files directly in ``lora_dir`` (``id``: the file name without its suffix, what
        ``LoRAAdapterSpec(source=...)`` takes)."""
        return adapter_files(self.config.lora_folder, LORA_SUFFIXES)

    # ---- normalize hooks: sd.cpp's defaults and size rules ---------------------------------------
    def normalize_generate_image_request(self, request: ImageGenerationRequest) -> ImageGenerationRequest:
        layout = self.config.layout
        if request.control_image is not None:
            raise CapabilityNotSupportedError("the sdcpp backend does not support control images")
        width = request.width or layout.default_size
        height = request.height or layout.default_size
        check_size("width", width, layout)
        check_size("height", height, layout)
        plain_options(request.extra)
        return replace_request(request, width=width, height=height, **self._common_defaults(request))

    def normalize_edit_image_request(self, request: ImageEditRequest) -> ImageEditRequest:
        from ..media import inspected_image

        image = inspected_image(request.image, "image")  # decoded by the manager already: no decode here
        check_size("image width", image.info.width, self.config.layout, "image")
        check_size("image height", image.info.height, self.config.layout, "image")
        strength = check_strength(request.extra.get("strength", DEFAULT_STRENGTH))
        plain_options(request.extra)
        defaults = self._common_defaults(request)
        return replace_request(request, image=image, extra={"strength": strength}, **defaults)

    def _common_defaults(self, request: Any) -> dict[str, Any]:
        return {
            "steps": request.steps or DEFAULT_STEPS,
            "guidance_scale": self.config.layout.default_cfg
            if request.guidance_scale is None
            else request.guidance_scale,
            "seed": random_seed() if request.seed is None else request.seed,
        }

    # ---- tasks: the plain forms are for direct use (they normalize); the manager normalizes itself --
    def generate_image(self, request: ImageGenerationRequest) -> GeneratedAsset:
        return self.generate_image_with_progress(self.normalize_generate_image_request(request))

    def edit_image(self, request: ImageEditRequest) -> GeneratedAsset:
        return self.edit_image_with_progress(self.normalize_edit_image_request(request))

    def generate_image_with_progress(
        self, request: ImageGenerationRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        """Run a request :meth:`normalize_generate_image_request` made (the manager's path)."""
        return self._run_job(self._job("text_to_image", request, request.width, request.height), progress_callback)

    def edit_image_with_progress(
        self, request: ImageEditRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        """Run a request :meth:`normalize_edit_image_request` made: its image carries its size."""
        from ..media import inspect_image

        info = inspect_image(request.image, "image")
        return self._run_job(self._job("image_to_image", request, info.width, info.height), progress_callback)

    def upscale_image(self, request: ImageUpscaleRequest) -> GeneratedAsset:
        return self.upscale_image_with_progress(request)

    def upscale_image_with_progress(
        self, request: ImageUpscaleRequest, progress_callback: ProgressArg = None
    ) -> GeneratedAsset:
        """``upscale_repeats`` upscaler passes (one step each), then the requested size (:mod:`._sdcpp_upscale`)."""
        upscaler = self.config.upscaler_file()  # a missing file is named before a missing engine
        mode = self.mode
        sd_cli = self.find_sd_cli() if mode == "cli" else None
        return self._upscaler.run(request, as_reporter(progress_callback, UPSCALE_TASK), upscaler, mode, sd_cli)

    def _job(self, task: str, request: Any, width: int, height: int) -> SdcppJob:
        unset = [name for name in ("seed", "steps", "guidance_scale") if getattr(request, name) is None]
        if unset:  # the *_with_progress forms run what normalize_* decided; they decide nothing themselves
            raise InvalidRequestError(
                f"{unset[0]}: not set; the *_with_progress methods take a normalized request (VisionManager "
                "normalizes; used directly, call normalize_*_request first, or the plain generate_image/edit_image)",
                field=unset[0],
            )
        options = plain_options(request.extra)
        refuse_tags({"prompt": request.prompt, "negative_prompt": request.negative_prompt or ""})
        base = Path(self.config.cwd or os.getcwd())
        loras = resolve_adapters(request.lora_adapters, self.config.lora_folder, base)
        return SdcppJob(
            task=task,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or "",
            width=width,
            height=height,
            steps=request.steps,
            seed=request.seed,
            cfg_scale=float(request.guidance_scale),
            strength=options.get("strength") if task == "image_to_image" else None,
            init_image=getattr(request, "image", None),
            mask=getattr(request, "mask", None),
            options=options,
            loras=loras,
        )

    def _run_job(self, job: SdcppJob, progress_callback: ProgressArg) -> GeneratedAsset:
        reporter = as_reporter(progress_callback, job.task)
        check_text(text_fields(job))
        self.config.check_files()
        mode = self.mode
        reporter.start(total_steps=job.steps)
        if mode == "cli":
            data, mime_type, timings = self._run_cli(job, reporter)
        else:
            data, mime_type, timings = self._run_python(job, reporter)
        reporter.end(total_steps=job.steps)
        return GeneratedAsset("image", data, mime_type, self._metadata(job, mode, timings))

    def _run_cli(self, job: SdcppJob, reporter: Any) -> tuple[bytes, str, dict[str, float]]:
        from ._sdcpp_cli import build_argv, check_command_line, read_image, run_process, write_input

        executable = self.find_sd_cli()
        if executable is None:
            raise self._engine_missing("cli")
        with tempfile.TemporaryDirectory(prefix="abstractvision-sdcpp-") as tmp:
            folder = Path(tmp)
            output = folder / "output.png"
            init = write_input(folder, "init", job.init_image) if job.init_image is not None else None
            mask = write_input(folder, "mask", job.mask) if job.mask is not None else None
            files = [(flag, str(path)) for _, flag, _, path in self.config.model_files()]
            loras = folder / "loras" if job.loras else None
            if loras is not None:
                link_adapters(loras, job.loras)  # removed with the call's folder
            argv = build_argv(executable, files, job, output, init, mask, self.config.extra_args, loras)
            check_command_line(argv, text_fields(job))
            result = run_process(
                argv, cwd=self.config.cwd or folder, timeout_s=self.config.timeout_s, reporter=reporter
            )
            data, mime_type = read_image(result, output)
            return data, mime_type, {"engine_s": round(result.elapsed_s, 4)}

    def _run_python(self, job: SdcppJob, reporter: Any) -> tuple[bytes, str, dict[str, float]]:
        from ..media import encode_png

        # The bindings hand back a PIL image made in this process; encoding it is the validation.
        image, load_s, engine_s = self._bindings_engine().generate(job, reporter)
        return encode_png(image), "image/png", {"load_s": round(load_s, 4), "engine_s": round(engine_s, 4)}

    def _bindings_engine(self):
        from ._sdcpp_python import BindingsEngine

        with self._engine_lock:
            if self._engine is None:
                paths = {keyword: str(path) for _, _, keyword, path in self.config.model_files()}
                self._engine = BindingsEngine(paths)
            return self._engine

    def _metadata(self, job: SdcppJob, mode: str, timings: dict[str, float]) -> dict[str, Any]:
        files = {name: path.name for name, _, _, path in self.config.model_files()}
        metadata: dict[str, Any] = {
            "model": files.get("model") or files.get("diffusion_model"),
            "model_files": files,
            "mode": mode,
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt,
            "seed": job.seed,
            "steps": job.steps,
            "guidance_scale": job.cfg_scale,
            "width": job.width,
            "height": job.height,
            "sampler": job.sampler,
        }
        if job.strength is not None:
            metadata["strength"] = job.strength
        options = {name: value for name, value in job.options.items() if name != "strength"}
        if options:
            metadata["options"] = options
        if mode == "cli" and self.config.extra_args:
            metadata["extra_args"] = list(self.config.extra_args)
        if job.loras:
            metadata["lora_files"] = {lora.name: lora.path.name for lora in job.loras}
        return {**metadata, **timings}


def _require_file(name: str, path: Path) -> None:
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{name}: file not found: {path} (set {name}= or {_ENV_PREFIX}{name.upper()} to an existing "
            "file; stable-diffusion.cpp never downloads models)",
            model=str(path),
        )


def _bindings_installed() -> bool:
    from importlib.util import find_spec

    try:
        return find_spec("stable_diffusion_cpp") is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
        return False


def _model_info(path: Path, role: str, capabilities: tuple[str, ...]) -> ProviderModelInfo:
    stat = path.stat()
    return ProviderModelInfo(
        id=str(path),
        object="model",
        created=int(stat.st_mtime),
        owned_by="local",
        capabilities=capabilities,
        raw={"path": str(path), "name": path.name, "role": role, "size_bytes": stat.st_size},
    )


__all__ = ["MODES", "StableDiffusionCppBackendConfig", "StableDiffusionCppVisionBackend"]
