"""Loading Diffusers pipelines: the import guard, device and dtype choice, cache-only loading, offload.

Why a module of its own: everything here runs once per load and touches the hub cache, torch and
the accelerator; the backend module keeps the per-call logic. Cache-only is enforced by passing
``local_files_only=True`` to every ``from_pretrained``/``from_single_file`` call; the process
environment (``HF_HUB_OFFLINE``) is never touched, because other code in the process may
legitimately use the hub.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AbstractVisionError, BackendNotConfiguredError, EngineError, ModelNotAvailableError
from . import optional_dependency
from ._diffusers_catalog import pipeline_folder

#: What :func:`optional_dependency` names as needing the ``diffusers`` extra.
_NEEDED_BY = "the diffusers backend"

#: Single-file checkpoints (original Stable Diffusion layout) load with ``from_single_file``.
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")

#: Short scheduler names users may type; any Diffusers scheduler class name works too.
SCHEDULER_ALIASES = {
    "ddim": "DDIMScheduler",
    "dpmpp_2m": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "lms": "LMSDiscreteScheduler",
    "pndm": "PNDMScheduler",
    "unipc": "UniPCMultistepScheduler",
}

DTYPE_NAMES = ("auto", "float32", "float16", "bfloat16")
OFFLOAD_MODES = ("auto", "model", "sequential", "none")

#: Where the device comes from, for messages about it.
DEVICE_SETTING = "device= / --device / ABSTRACTVISION_DIFFUSERS_DEVICE"

#: GPUs with less memory than this get model offload under ``cpu_offload="auto"``.
_AUTO_OFFLOAD_BELOW_BYTES = 12 * 1024**3


def import_engine() -> tuple[Any, Any]:
    """``(torch, diffusers)``, or :class:`OptionalDependencyMissingError` with the install line."""
    with optional_dependency("diffusers", _NEEDED_BY):
        import diffusers
        import torch
    return torch, diffusers


def resolve_device(torch: Any, device: str) -> str:
    """``auto`` picks cuda, then mps, then cpu; an explicit device that torch cannot parse, or that
    is absent (no CUDA, a GPU index past the last one, no MPS), is a config error before any load."""
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise BackendNotConfiguredError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps' ({DEVICE_SETTING})"
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendNotConfiguredError(
                f"device={device!r} but torch sees no CUDA GPU; use device='auto' or 'cpu' ({DEVICE_SETTING})"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise BackendNotConfiguredError(
                f"device={device!r} but torch sees {torch.cuda.device_count()} CUDA GPU(s), numbered from 0 "
                f"({DEVICE_SETTING})"
            )
    if parsed.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BackendNotConfiguredError(
            f"device={device!r} but MPS is not available; use device='auto' or 'cpu' ({DEVICE_SETTING})"
        )
    return device


def resolve_dtype(torch: Any, torch_dtype: str, device: str) -> Any:
    """``auto``: float16 on GPUs (``auto_retry_fp32`` catches overflow; pass ``bfloat16`` for FLUX-class
    models), float32 on CPU."""
    if torch_dtype not in DTYPE_NAMES:
        raise BackendNotConfiguredError(
            f"torch_dtype={torch_dtype!r} is not one of {', '.join(DTYPE_NAMES)} "
            "(--torch-dtype / ABSTRACTVISION_DIFFUSERS_TORCH_DTYPE)"
        )
    if torch_dtype != "auto":
        return getattr(torch, torch_dtype)
    return torch.float16 if device.startswith(("cuda", "mps")) else torch.float32


def generator_device(device: str) -> str:
    """Where the seeded generator lives: the GPU for CUDA; CPU for MPS (Diffusers' advice) and CPU."""
    return "cuda" if device.startswith("cuda") else "cpu"


@dataclass(frozen=True)
class LoadOptions:
    """What :func:`load_pipeline` needs, resolved from the backend config."""

    model_id: str
    device: str
    dtype: Any
    allow_download: bool
    cache_dir: str | None
    revision: str | None
    variant: str | None
    use_safetensors: bool | None
    low_cpu_mem_usage: bool
    cpu_offload: str
    scheduler: str | None
    single_file_config: str | None = None
    #: The Diffusers class a folder or repo id loads with (``DiffusionPipeline``: whatever its index names).
    pipeline_class: str = "AutoPipelineForText2Image"


def not_cached_error(model_id: str) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"model {model_id!r} is not in the local Hugging Face cache and downloads are off. "
        f"Download it once with `hf download {model_id}` (or `huggingface-cli download {model_id}`), "
        "or allow downloads: allow_download=True, --allow-download, or ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD=1",
        model=model_id,
    )


def single_file_config(path: Path, options: LoadOptions) -> str | None:
    """The Diffusers config (a local folder) to build a single-file checkpoint's pipeline with.

    Why: a single ``.safetensors``/``.ckpt`` file holds weights only; Diffusers builds the pipeline
    from its base model's config files (``model_index.json``, component configs, tokenizer). When
    those are not cached, ``from_single_file`` quietly turns ``local_files_only`` off and fetches
    them from the hub. So with downloads off the config is resolved here, from the cache or a local
    folder, and a missing one is an error that says how to get it (a few kilobytes, no weights).
    With downloads on, Diffusers resolves (and downloads) it itself.
    """
    wanted = options.single_file_config
    if options.allow_download:
        return wanted
    if wanted is None:
        wanted = base_model_of(path)
    folder = pipeline_folder(wanted, options.cache_dir)
    if folder is None:
        raise ModelNotAvailableError(
            f"single-file checkpoint {path.name!r} needs the Diffusers config of its base model {wanted!r}, "
            "which is not in the local Hugging Face cache and downloads are off. Get the config files once "
            f"(no weights): `hf download {wanted} --include '*.json' '*.txt'`; or pass single_file_config= "
            "a local Diffusers pipeline folder; or allow downloads: allow_download=True, --allow-download, "
            "or ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD=1",
            model=str(path),
        )
    return str(folder)


def base_model_of(path: Path) -> str:
    """The hub repo whose config Diffusers uses for this checkpoint (inferred from its tensors).

    A ``.safetensors`` file is read lazily (header, plus the few tensors the inference looks at),
    so a multi-gigabyte checkpoint is not loaded twice.
    """
    with optional_dependency("diffusers", _NEEDED_BY):
        from diffusers.loaders.single_file_utils import fetch_diffusers_config, load_single_file_checkpoint

    if path.suffix.lower() == ".safetensors":
        checkpoint: Any = _LazyCheckpoint(path)
    else:
        checkpoint = load_single_file_checkpoint(str(path), local_files_only=True)
    try:
        return fetch_diffusers_config(checkpoint)["pretrained_model_name_or_path"]
    except Exception as exc:  # Diffusers raises several types for checkpoints it cannot place
        raise ModelNotAvailableError(
            f"could not tell which model {path.name!r} is ({exc}); pass single_file_config= a local Diffusers "
            "pipeline folder (or a cached repo id) of its base model",
            model=str(path),
        ) from exc


class _LazyCheckpoint(Mapping):
    """A read-only view of a safetensors file that loads a tensor only when it is looked at."""

    def __init__(self, path: Path):
        with optional_dependency("diffusers", _NEEDED_BY):
            from safetensors import safe_open

        self._file = safe_open(str(path), framework="pt")
        self._keys = list(self._file.keys())
        self._key_set = set(self._keys)

    def __getitem__(self, key: str) -> Any:
        if key not in self._key_set:
            raise KeyError(key)
        return self._file.get_tensor(key)

    def __contains__(self, key: object) -> bool:
        return key in self._key_set

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _dtype_kwarg(diffusers: Any) -> str:
    """Diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns); older releases know only the old."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"


def load_pipeline(options: LoadOptions) -> Any:
    """Load the pipeline for ``options.model_id`` (folder, repo id or single file): the text-to-image
    one unless ``options.pipeline_class`` says otherwise."""
    torch, diffusers = import_engine()
    model_id = options.model_id
    path = Path(model_id).expanduser()
    kwargs: dict[str, Any] = {
        _dtype_kwarg(diffusers): options.dtype,
        "local_files_only": not options.allow_download,
        "cache_dir": options.cache_dir,
        "revision": options.revision,
        "low_cpu_mem_usage": options.low_cpu_mem_usage,
    }
    if options.variant:
        kwargs["variant"] = options.variant
    if options.use_safetensors is not None:
        kwargs["use_safetensors"] = options.use_safetensors
    looks_local = path.exists() or model_id.startswith((".", "/", "~")) or model_id.endswith(SINGLE_FILE_SUFFIXES)
    if looks_local and not path.exists():
        raise ModelNotAvailableError(f"model path {str(path)!r} does not exist", model=model_id)
    source = str(path) if looks_local else model_id
    if not looks_local and not options.allow_download:
        cached = pipeline_folder(model_id, options.cache_dir, options.revision)
        if cached is None:
            raise not_cached_error(model_id)
        source = str(cached)
    if path.is_file():
        config = single_file_config(path, options)
        if config is not None:
            kwargs["config"] = config
    with engine_errors(model_id, "loading", "torch_dtype='float16' or a smaller model"):
        try:
            with quiet_loading():
                if path.is_file():
                    pipe = diffusers.StableDiffusionPipeline.from_single_file(source, **kwargs)
                else:
                    pipe = getattr(diffusers, options.pipeline_class).from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(f"could not load model {model_id!r}: {exc}", model=model_id) from exc
        if options.scheduler:
            pipe.scheduler = build_scheduler(diffusers, options.scheduler, pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
    moving = f"moving its weights to device {options.device!r} ({DEVICE_SETTING})"
    with engine_errors(model_id, moving, "cpu_offload='model' (or 'sequential'), torch_dtype='float16'"):
        place(pipe, torch, options)
    return pipe


@contextlib.contextmanager
def engine_errors(model_id: str | None, doing: str, out_of_memory_advice: str) -> Iterator[None]:
    """Engine failures while ``doing`` (loading, moving to the device, generating) become
    :class:`EngineError`, out of memory with ``out_of_memory_advice``; our own errors (a config
    error, a cancel) pass through unchanged.

    Why one translator for every stage: an out-of-memory error is equally likely when weights
    land on the GPU as when the first image is made, and the caller must get the same type.
    """
    try:
        yield
    except AbstractVisionError:
        raise
    except Exception as exc:
        if is_out_of_memory(exc):
            raise EngineError(f"{model_id} ran out of memory {doing}: try {out_of_memory_advice} ({exc})") from exc
        raise EngineError(f"{model_id} failed {doing}: {type(exc).__name__}: {exc}") from exc


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's out-of-memory errors (CUDA, MPS, CPU allocator) by type name or message."""
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence Diffusers' and Transformers' own loading bars and notices while a pipeline loads.

    Why: the caller's ``on_progress`` (and the CLI's progress bar) owns the terminal; tqdm bars and
    "requires torchvision" notices from inside ``from_pretrained`` would interleave with it. Hub
    *download* bars (huggingface_hub) are left alone: with downloads allowed they are the only
    sign of a multi-gigabyte transfer. The previous settings are restored afterwards.
    """
    with optional_dependency("diffusers", _NEEDED_BY):
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

    bars = [(m, m.is_progress_bar_enabled()) for m in (diffusers_logging, transformers_logging)]
    verbosity = transformers_logging.get_verbosity()
    for module, _ in bars:
        module.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        for module, enabled in bars:
            if enabled:
                module.enable_progress_bar()


def build_scheduler(diffusers: Any, name: str, config: Any) -> Any:
    """A scheduler by alias (``euler``) or class name (``EulerDiscreteScheduler``) from the model's config."""
    class_name = SCHEDULER_ALIASES.get(name.lower(), name)
    scheduler_class = getattr(diffusers, class_name, None)
    if scheduler_class is None or not class_name.endswith("Scheduler"):
        known = ", ".join(sorted(SCHEDULER_ALIASES))
        raise BackendNotConfiguredError(
            f"scheduler={name!r} is not a Diffusers scheduler; use one of {known} or a Diffusers scheduler class name"
        )
    return scheduler_class.from_config(config)


def place(pipe: Any, torch: Any, options: LoadOptions) -> None:
    """Move the pipeline to its device, or set up CPU offload (CUDA only)."""
    mode = options.cpu_offload
    if mode not in OFFLOAD_MODES:
        raise BackendNotConfiguredError(f"cpu_offload={mode!r} is not one of {', '.join(OFFLOAD_MODES)}")
    on_cuda = options.device.startswith("cuda")
    if mode == "auto":
        mode = "model" if on_cuda and _gpu_memory(torch) < _AUTO_OFFLOAD_BELOW_BYTES else "none"
    if mode != "none" and not on_cuda:
        raise BackendNotConfiguredError(
            f"cpu_offload={mode!r} needs a CUDA GPU (device is {options.device!r}); use cpu_offload='none'"
        )
    if mode == "model":
        pipe.enable_model_cpu_offload(device=options.device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=options.device)
    else:
        pipe.to(options.device)


def _gpu_memory(torch: Any) -> int:
    return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory


def release_accelerator_memory(torch: Any) -> None:
    """Return cached allocator blocks to the driver (and freed heap to the OS), so an unload is
    visible to other processes: glibc keeps freed weight and activation buffers in its arenas
    until asked to trim them."""
    _trim_c_heap()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        mps.empty_cache()


def _trim_c_heap() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl): nothing to trim
        pass


__all__ = [
    "DTYPE_NAMES",
    "LoadOptions",
    "OFFLOAD_MODES",
    "SCHEDULER_ALIASES",
    "SINGLE_FILE_SUFFIXES",
    "DEVICE_SETTING",
    "build_scheduler",
    "engine_errors",
    "generator_device",
    "import_engine",
    "is_out_of_memory",
    "load_pipeline",
    "not_cached_error",
    "place",
    "release_accelerator_memory",
    "resolve_device",
    "resolve_dtype",
    "single_file_config",
]
