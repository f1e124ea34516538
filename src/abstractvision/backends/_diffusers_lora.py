"""The LoRA adapters of one loaded pipeline: each loaded once and kept, and on every call exactly
that call's adapters active, at that call's scales.

Why keep them: loading an adapter (reading its file, injecting PEFT layers into the UNet and text
encoder) costs more than a whole call on a small model, so an adapter stays loaded until the
pipeline is unloaded. Because adapters stay, a call must leave nothing behind for the next: a call
without adapters turns the LoRA layers off (``disable_lora``: every layer computes its base weights
alone, so the pixels equal a pipeline that never saw a LoRA), and a call with other adapters
replaces the active set (``set_adapters``) instead of adding to it. Weights are never fused into
the base model, so nothing has to be undone.

Why switch lazily: the keeper remembers the active set (names and scales) and touches the
pipeline only when the next call's set differs. Each switch walks every module of the UNet and
text encoder: on the tiny test pipeline (2 CPU cores, one torch thread; ``bench/lora_overhead.py``)
``set_adapters`` takes about 1.4 ms and ``disable_lora`` + ``enable_lora`` 2.8 ms, against a 60 ms
LoRA call, so switching on every call would spend 2.5 to 5 % of the 5 % overhead budget; a repeated
set costs one tuple comparison. What a call produces is the same either way, because the modules'
adapter state changes only here, under the backend's pipeline lock (loading, switching and the
call itself all run holding it).

Image-to-image and inpainting pipelines are made with ``from_pipe`` and share the text pipeline's
UNet and text encoder, the modules LoRA layers live in: one keeper serves all three pipelines, an
adapter loaded for a generation is the one an edit uses, and the active set is one for all.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CapabilityNotSupportedError, InvalidRequestError
from ..progress import ProgressReporter
from ._diffusers_loading import engine_errors, is_out_of_memory
from ._diffusers_lora_sources import AdapterFile

#: What to try when an adapter does not fit in memory.
_OUT_OF_MEMORY_ADVICE = "fewer adapters per call, unload() to drop the adapters kept, or torch_dtype='float16'"


@dataclass(frozen=True)
class _Held:
    name: str
    version: tuple[int, int]


class PipelineAdapters:
    """The adapters loaded into one pipeline's modules (and the pipelines derived from it)."""

    def __init__(self, model_id: str | None):
        self._model_id = model_id
        self._held: dict[str, _Held] = {}  # AdapterFile.key -> the loaded adapter
        self._active: tuple[tuple[str, float], ...] | None = ()  # None: unknown (after a load or a failure)

    def apply(self, pipe: Any, adapters: Sequence[AdapterFile], reporter: ProgressReporter | None = None) -> None:
        """Make exactly ``adapters`` active on ``pipe``, at their scales, loading those not yet loaded;
        with none, turn LoRA off. Call with the backend's lock held."""
        if adapters and not hasattr(pipe, "set_adapters"):
            raise CapabilityNotSupportedError(
                f"{type(pipe).__name__} ({self._model_id}) does not take LoRA adapters in Diffusers"
            )
        wanted = tuple((self._load(pipe, adapter, reporter), adapter.spec.scale) for adapter in adapters)
        if wanted == self._active:
            return
        previous, self._active = self._active, None
        with engine_errors(self._model_id, "switching LoRA adapters", _OUT_OF_MEMORY_ADVICE):
            if not wanted:
                pipe.disable_lora()
            else:
                if not previous:  # off, or unknown: set_adapters alone does not turn layers back on
                    pipe.enable_lora()
                pipe.set_adapters([name for name, _ in wanted], adapter_weights=[scale for _, scale in wanted])
        self._active = wanted

    def _load(self, pipe: Any, adapter: AdapterFile, reporter: ProgressReporter | None) -> str:
        """The PEFT name of ``adapter`` on ``pipe``, loading it unless it is loaded (and unchanged on disk)."""
        held = self._held.get(adapter.key)
        if held is not None and held.version == adapter.version:
            return held.name
        self._active = None
        if held is not None:  # the file was replaced since it was loaded
            del self._held[adapter.key]
            pipe.delete_adapters(held.name)
        name = self._free_name(pipe, adapter.name)
        if reporter is not None:
            reporter.report("load", message=f"loading LoRA adapter {adapter.spec.source} ({adapter.path})")
        with engine_errors(self._model_id, f"loading LoRA adapter {adapter.spec.source!r}", _OUT_OF_MEMORY_ADVICE):
            try:
                with _quiet():
                    folder, file = str(adapter.path.parent), adapter.path.name
                    pipe.load_lora_weights(folder, weight_name=file, adapter_name=name, local_files_only=True)
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise
                self._drop(pipe, name)  # a part may have loaded (the UNet's) before another failed
                raise InvalidRequestError(
                    f"{adapter.field}: {adapter.spec.source!r} ({adapter.path}) is not a LoRA adapter "
                    f"{type(pipe).__name__} can load ({self._model_id}): {type(exc).__name__}: {exc}",
                    field=adapter.field,
                ) from exc
        if name not in _loaded_names(pipe):
            raise InvalidRequestError(
                f"{adapter.field}: {adapter.spec.source!r} ({adapter.path}) holds no LoRA weights for the modules of "
                f"{type(pipe).__name__} ({self._model_id}); is it an adapter for another model family?",
                field=adapter.field,
            )
        self._held[adapter.key] = _Held(name, adapter.version)
        return name

    def _free_name(self, pipe: Any, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``wanted-3``... when another source holds that name already."""
        taken = {held.name for held in self._held.values()} | _loaded_names(pipe)
        name, number = wanted, 1
        while name in taken:
            number += 1
            name = f"{wanted}-{number}"
        return name

    @staticmethod
    def _drop(pipe: Any, name: str) -> None:
        if name in _loaded_names(pipe):
            pipe.delete_adapters(name)


def _loaded_names(pipe: Any) -> set[str]:
    return {name for names in pipe.get_list_adapters().values() for name in names}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide Diffusers' and PEFT's notices while an adapter loads ("no LoRA keys for the text encoder",
    "multiple adapters in the model"): they describe what the keeper does on purpose, and a
    failure reaches the caller as an error of ours."""
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            yield
    finally:
        diffusers_logging.set_verbosity(verbosity)


__all__ = ["PipelineAdapters"]
