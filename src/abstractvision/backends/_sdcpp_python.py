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

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import EngineError, InvalidRequestError
from ..progress import ProgressReporter
from ._sdcpp_job import SdcppJob

#: How often a call waiting for the loaded context (another call is generating) checks its cancel event.
_WAIT_POLL_S = 0.05
#: Option names whose bindings keyword differs from sd-cli's flag name.
_KEYWORD_ALIASES = {"sampling_method": "sample_method", "sampler": "sample_method"}
#: Held by every call into the bindings (see "One progress hook per process" above).
_C_CALLS = threading.Lock()


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
        return bindings.StableDiffusion(**self.model_paths, verbose=False)

    @contextmanager
    def _held(self, reporter: ProgressReporter) -> Iterator[None]:
        """The context's lock, then the process's bindings lock, each waited for cancellably: a queued
        call is not stuck behind another whole run."""
        with _cancellable(self._lock, reporter), _cancellable(_C_CALLS, reporter):
            yield

    def _describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.model_paths.items())


class BindingsEngine(_BindingsContext):
    """The generation model's context."""

    def generate(self, job: SdcppJob, reporter: ProgressReporter) -> tuple[Any, float, float]:
        """Run ``job``; return ``(RGB PIL image, load seconds, generation seconds)``."""
        kwargs = self._keywords(job)
        with self._held(reporter):
            load_s = self._load_locked()
            reporter.raise_if_cancelled()  # the last point where a cancel saves the whole run
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
            "prompt": job.prompt,
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
