"""Python mode: the ``stable-diffusion-cpp-python`` bindings, loaded once and reused.

Why: loading a model is most of a short sd-cli run; in-process bindings pay it once (``preload``)
and then only sample. One loaded context is not safe to use from two threads, so calls are
serialised with a lock.

Two facts about the bindings shape this module:

* **0.4.5 progress-callback crash.** ``generate_image(progress_callback=...)`` installs a C
  callback that points into a Python closure and never removes it; once that closure is freed, the
  next call *without* a callback makes sd.cpp call freed memory (segfault). We therefore always
  pass a callback, and clear the C hook after every call so that other code in the process that
  uses the bindings directly is safe too.
* **No interruption.** A running C call cannot be stopped from Python (an exception raised in a
  ctypes callback is printed and dropped, and 0.4.5 exposes no abort hook), so cancellation is
  honoured as soon as the call returns. Before it starts, cancel holds: while waiting for another
  call to release the context, and once the model is loaded. ``timeout_s`` is sd-cli's only: a
  deadline could not stop the C call either (use CLI mode for a hard limit).
* **One progress hook per process.** sd.cpp keeps the progress callback in a C global that loading,
  sampling and upscaling all report to, so every call into a context (the generation model's or the
  upscaler's) holds one process-wide lock: no call reports into another's hook, or into one freed
  under it.

The upscaler (``upscale_model``) is a context of its own (:class:`BindingsUpscaler`), loaded
without a diffusion model; each pass is one call, so a cancel is honoured between passes.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import EngineError, InvalidRequestError
from ..progress import ProgressReporter
from ._sdcpp_job import SdcppJob
from ._sdcpp_lora import SdcppLora, link_adapters, prompt_with_tags

#: How often a call waiting for the loaded context (another call is generating) checks its cancel event.
_WAIT_POLL_S = 0.05
#: Option names whose bindings keyword differs from sd-cli's flag name.
_KEYWORD_ALIASES = {"sampling_method": "sample_method", "sampler": "sample_method"}
#: Held by every call into the bindings (see "One progress hook per process" above).
_C_CALLS = threading.Lock()


def engine_threads(bindings: Any) -> int:
    """sd-cli's default thread count, the machine's physical cores, for the bindings too.

    Why: the bindings default to half the logical CPUs, so python mode ran at about half sd-cli's and
    sd-server's speed on the same machine (measured 0.55x on 2 cores, docs/benchmarks.md).
    """
    return max(1, int(bindings.sd_get_num_physical_cores()))


def import_bindings() -> Any:
    """The ``stable_diffusion_cpp`` module, or an error saying how to install it."""
    from . import optional_dependency

    with optional_dependency("sdcpp", "stable-diffusion.cpp's Python mode"):
        import stable_diffusion_cpp
    return stable_diffusion_cpp


class _BindingsContext:
    """One sd.cpp context of the bindings, loaded on first use, and the lock that serialises its use."""

    def __init__(self, model_paths: Mapping[str, str]):
        self.model_paths = dict(model_paths)  # bindings keyword -> absolute path
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> float:
        """Load the model unless loaded; return the seconds spent (0 when it already was)."""
        with self._lock, _C_CALLS:  # loading reports its tensors to the progress hook too
            return self._load_locked()

    def _load_locked(self) -> float:
        if self._model is not None:
            return 0.0
        bindings = import_bindings()
        started = time.perf_counter()
        try:
            self._model = self._open(bindings)
        except Exception as exc:  # the bindings raise plain exceptions for unreadable models
            raise EngineError(f"stable-diffusion.cpp could not load the model ({self._describe()}): {exc}") from exc
        return time.perf_counter() - started

    def unload(self) -> None:
        with self._lock:
            model, self._model = self._model, None
            if model is not None:
                model.close()

    def _open(self, bindings: Any) -> Any:
        return bindings.StableDiffusion(**self.model_paths, n_threads=engine_threads(bindings), verbose=False)

    @contextmanager
    def _held(self, reporter: ProgressReporter) -> Iterator[None]:
        """The context's lock, then the process's bindings lock, each waited for cancellably: a queued
        call is not stuck behind another whole run."""
        with _cancellable(self._lock, reporter), _cancellable(_C_CALLS, reporter):
            yield

    def _describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.model_paths.items())


class BindingsEngine(_BindingsContext):
    """The generation model's context.

    **LoRA.** The bindings read ``<lora:NAME:SCALE>`` prompt tags against the ``lora_model_dir`` fixed
    when the model loads, so the engine owns one folder for its life and relinks it for each call's
    adapters: a new folder never needs a reload. The weights do. sd.cpp 0.4.5 changes the loaded model:
    f16/f32 weights get an adapter merged in, and the next call subtracts it again
    (``apply_loras_immediately``), which in f16 does not give the same weights back (measured: a call
    without adapters after one with makes other pixels than before it); quantized models are patched
    at run time, and a call without adapters keeps the last call's patches (``apply_loras_at_runtime``
    returns before resetting them). So the model is **reloaded before a call whose adapters differ from
    those applied to it**, and only then: the same adapters again (sd.cpp then adds a zero difference),
    or no adapters after none, reuse the loaded weights. ``load_s`` in the metadata shows the reload.
    """

    def __init__(self, model_paths: Mapping[str, str]):
        super().__init__(model_paths)
        self._lora_folder: Path | None = None  # made with the model, removed on unload
        #: What the loaded weights carry: (file, scale, size, mtime) of each adapter applied to them.
        self._applied: tuple[tuple[str, float, int, int], ...] = ()

    def _open(self, bindings: Any) -> Any:
        if self._lora_folder is None:
            self._lora_folder = Path(tempfile.mkdtemp(prefix="abstractvision-sdcpp-lora-"))
        self._applied = ()
        return bindings.StableDiffusion(
            **self.model_paths,
            lora_model_dir=str(self._lora_folder),
            n_threads=engine_threads(bindings),
            verbose=False,
        )

    def unload(self) -> None:
        super().unload()
        with self._lock:
            folder, self._lora_folder = self._lora_folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _use_adapters(self, loras: tuple[SdcppLora, ...]) -> float:
        """Link ``loras`` for the call, reloading first when the weights carry other adapters; the
        seconds spent reloading. Called with the context's lock held."""
        wanted = _identity(loras)
        load_s = 0.0
        if self._applied and wanted != self._applied:
            self._model.close()
            self._model = None
            load_s = self._load_locked()
        link_adapters(self._lora_folder, loras)  # type: ignore[arg-type]
        self._applied = wanted  # before the run: if it fails half-way, the next other call reloads
        return load_s

    def generate(self, job: SdcppJob, reporter: ProgressReporter) -> tuple[Any, float, float]:
        """Run ``job``; return ``(RGB PIL image, load seconds, generation seconds)``."""
        kwargs = self._keywords(job)
        with self._held(reporter):
            load_s = self._load_locked()
            reporter.raise_if_cancelled()  # the last point where a cancel saves the whole run
            load_s += self._use_adapters(job.loras)
            stopped: list[BaseException] = []

            def on_step(step: int, steps: int, _elapsed: float) -> None:
                if stopped or step < 1:  # sd.cpp also reports step 0; "start" already said that
                    return
                try:
                    reporter.step(min(step, steps), steps)
                except BaseException as exc:  # kept and re-raised once the C call returns
                    stopped.append(exc)

            started = time.perf_counter()
            try:
                images = self._model.generate_image(**kwargs, progress_callback=on_step)
            except Exception as exc:
                raise EngineError(f"stable-diffusion.cpp failed: {exc}") from exc
            finally:
                _clear_progress_hook()
            elapsed = time.perf_counter() - started
        if stopped:
            raise stopped[0]
        reporter.raise_if_cancelled()
        if not images:
            raise EngineError("stable-diffusion.cpp returned no image")
        return images[0].convert("RGB"), load_s, elapsed

    def _keywords(self, job: SdcppJob) -> dict[str, Any]:
        from ..media import decode_image

        kwargs: dict[str, Any] = {
            "prompt": prompt_with_tags(job.prompt, job.loras),
            "negative_prompt": job.negative_prompt,
            "width": job.width,
            "height": job.height,
            "sample_steps": job.steps,
            "seed": job.seed,
            "cfg_scale": job.cfg_scale,
        }
        if job.init_image is not None:
            kwargs["init_image"] = decode_image(job.init_image, "RGB")
            kwargs["strength"] = job.strength
        if job.mask is not None:
            kwargs["mask_image"] = decode_image(job.mask, "L")
        accepted = _generate_keywords()
        for name, value in job.options.items():
            keyword = _KEYWORD_ALIASES.get(name, name)
            if keyword not in accepted:
                raise InvalidRequestError(
                    f"extra[{name!r}]: not an option of the stable-diffusion.cpp bindings' generate_image "
                    "(CLI mode passes unknown options to sd-cli as flags)",
                    field=f"extra[{name!r}]",
                )
            kwargs.setdefault(keyword, value)
        return kwargs


class BindingsUpscaler(_BindingsContext):
    """An upscaler-only context (``StableDiffusion(upscaler_path=...)``, no diffusion model)."""

    def __init__(self, path: str):
        super().__init__({"upscaler_path": path})

    def _open(self, bindings: Any) -> Any:
        # 0.4.5 silences the model's loading but not the upscaler's, whose loader also resets ggml's log hook
        from stable_diffusion_cpp._utils import suppress_stdout_stderr

        with suppress_stdout_stderr(disable=False):
            return super()._open(bindings)

    def upscale(self, image: bytes, passes: int, reporter: ProgressReporter) -> tuple[Any, float, float]:
        """Run ``passes`` upscaler passes over ``image``; ``(RGB PIL image, load seconds, upscale seconds)``.

        Each pass reports one step; a cancel stops the run between passes."""
        from ..media import decode_image

        picture = decode_image(image, "RGB")
        with self._held(reporter):
            load_s = self._load_locked()
            reporter.raise_if_cancelled()
            started = time.perf_counter()
            for done in range(1, passes + 1):
                try:
                    upscaled = self._model.upscale([picture])
                except Exception as exc:
                    raise EngineError(f"stable-diffusion.cpp's upscaler failed: {exc}") from exc
                if not upscaled:
                    raise EngineError("stable-diffusion.cpp's upscaler returned no image")
                picture = upscaled[0].convert("RGB")
                reporter.step(done, passes)
            elapsed = time.perf_counter() - started
        return picture, load_s, elapsed


@contextmanager
def _cancellable(lock: threading.Lock, reporter: ProgressReporter) -> Iterator[None]:
    """``lock``, waited for while checking the caller's cancel every ``_WAIT_POLL_S``."""
    while not lock.acquire(timeout=_WAIT_POLL_S):
        reporter.raise_if_cancelled()
    try:
        yield
    finally:
        lock.release()


def _identity(loras: tuple[SdcppLora, ...]) -> tuple[tuple[str, float, int, int], ...]:
    """The adapters as what they do to the weights: the file (and its version) and the scale, in any order."""
    stamps = []
    for lora in loras:
        stat = lora.path.stat()
        stamps.append((str(lora.path), lora.scale, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(stamps))


def _generate_keywords() -> frozenset[str]:
    import inspect

    bindings = import_bindings()
    params = inspect.signature(bindings.StableDiffusion.generate_image).parameters
    return frozenset(name for name in params if name not in ("self", "progress_callback", "preview_callback"))


def _clear_progress_hook() -> None:
    """Point sd.cpp's global progress hook at nothing (see the 0.4.5 crash in the module docstring)."""
    from stable_diffusion_cpp import stable_diffusion_cpp as sd_cpp

    sd_cpp.sd_set_progress_callback(None, None)


__all__ = ["BindingsEngine", "BindingsUpscaler", "import_bindings"]
