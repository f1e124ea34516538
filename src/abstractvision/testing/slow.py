"""A backend that takes its time on purpose: for server, queue and scaling tests and benchmarks.

It sleeps ``step_s`` per step (checking cancel at every step, like Diffusers' step callback),
reports each step, can send a preview per step, and can fail the way engines do. Its pictures are
small solid-colour PNGs whose colour comes from the seed, so a test can tell results apart.
Register it to serve it: ``register_backend("slow", "abstractvision.testing.slow:SlowBackend")``.

LoRA, as a test engine does it: with ``lora_dir`` set it takes adapters (``supports_lora``), lists the
``*.safetensors`` files there (ids: their stems), and "applies" each adapter by shifting the colour by
an amount made from the adapter's name (its file's stem) times its scale, so a surface test sees a
checkable effect (scale 0: none). An adapter is a file path or a name in ``lora_dir``; a missing one
is an :class:`~abstractvision.errors.AdapterNotAvailableError` before the run starts. The files are
never read (``weight_name`` and ``subfolder`` are not used): this is no LoRA engine.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backends import VisionBackend
from ..config import setting
from ..errors import AdapterNotAvailableError, EngineError, GenerationCancelledError
from ..lora import adapter_files
from ..progress import as_reporter
from ..types import GeneratedAsset, LoRAAdapterSpec, ProviderAdapterInfo, VisionBackendCapabilities


@dataclass(frozen=True)
class SlowConfig:
    model_id: str = setting("slow-1", env="ABSTRACTVISION_SLOW_MODEL", flag="--model", help="The model id it reports.")
    step_s: float = setting(0.05, env="ABSTRACTVISION_SLOW_STEP_S", flag="--slow-step-s", help="Seconds per step.")
    steps: int = setting(4, env="ABSTRACTVISION_SLOW_STEPS", flag="--slow-steps", help="Steps when none are asked.")
    fail: str | None = setting(
        env="ABSTRACTVISION_SLOW_FAIL",
        flag="--slow-fail",
        help="Fail every run: 'engine' (an EngineError), 'bug' (a RuntimeError) or 'crash' (the process exits).",
    )
    previews: bool = setting(
        False, env="ABSTRACTVISION_SLOW_PREVIEWS", flag="--slow-previews", help="Send a preview image at every step."
    )
    lora_dir: str | None = setting(
        env="ABSTRACTVISION_SLOW_LORA_DIR",
        flag="--lora-dir",
        help="A folder of *.safetensors LoRA adapters (the test engine shifts its colour by their names and scales).",
    )


class SlowBackend(VisionBackend):
    """See the module docstring. ``runs`` counts started runs, ``stopped_at`` records the step a
    cancelled run stopped at (both for tests in the same process)."""

    name = "slow"
    config_class = SlowConfig

    def __init__(self, config: SlowConfig | None = None):
        self.config = config or SlowConfig()
        self.runs = 0
        self.stopped_at: list[int] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def get_capabilities(self) -> VisionBackendCapabilities:
        return VisionBackendCapabilities(
            supported_tasks=("text_to_image", "image_to_image"),
            supports_mask=True,
            max_width=2048,
            max_height=2048,
            previews=self.config.previews,
            supports_lora=self.config.lora_dir is not None,
        )

    def list_provider_adapters(self) -> list[ProviderAdapterInfo]:
        return adapter_files(self.config.lora_dir, (".safetensors",))

    def _lora_folder(self) -> Path | None:
        return Path(self.config.lora_dir).expanduser() if self.config.lora_dir else None

    def _adapter_file(self, spec: LoRAAdapterSpec) -> Path:
        """The file ``spec`` names: a path, or a name (with or without ``.safetensors``) in ``lora_dir``."""
        folder = self._lora_folder()
        candidates = [Path(spec.source).expanduser()]
        if folder is not None:
            candidates += [folder / spec.source, folder / f"{spec.source}.safetensors"]
        for path in candidates:
            if path.is_file():
                return path
        where = f"in lora_dir {folder}" if folder is not None else "and no lora_dir is set"
        raise AdapterNotAvailableError(
            f"lora_adapters: adapter {spec.source!r} not found (not a file, not {where})", adapter=spec.source
        )

    def generate_image(self, request) -> GeneratedAsset:
        return self._draw("text_to_image", request, None)

    def edit_image(self, request) -> GeneratedAsset:
        return self._draw("image_to_image", request, None)

    def generate_image_with_progress(self, request, progress_callback=None) -> GeneratedAsset:
        return self._draw("text_to_image", request, progress_callback)

    def edit_image_with_progress(self, request, progress_callback=None) -> GeneratedAsset:
        return self._draw("image_to_image", request, progress_callback)

    def _draw(self, task: str, request, progress_callback) -> GeneratedAsset:
        reporter = as_reporter(progress_callback, task)
        adapters = [(self._adapter_file(spec).stem, spec.scale) for spec in request.lora_adapters]
        steps = request.steps or self.config.steps
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        colour = _colour(seed, adapters)
        with self._lock:
            self.runs += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            reporter.start(total_steps=steps)
            self._fail_if_asked()
            step = 0
            try:
                for step in range(1, steps + 1):
                    if reporter.cancel_event is not None:
                        reporter.cancel_event.wait(self.config.step_s)  # wakes at once on cancel
                    else:
                        time.sleep(self.config.step_s)
                    preview = _png(colour, 8, 8) if self.config.previews else None
                    reporter.step(step, steps)  # raises once cancelled, like an engine's step callback
                    if preview is not None:
                        reporter.report("preview", step=step, total_steps=steps, preview=preview)
            except GenerationCancelledError:  # wherever the cancel was seen, the run stopped at this step
                self.stopped_at.append(step)
                raise
            width = getattr(request, "width", None) or 32
            height = getattr(request, "height", None) or 32
            data = _png(colour, width, height)
            reporter.end(total_steps=steps)
        finally:
            with self._lock:
                self.active -= 1
        metadata = {"model": self.config.model_id, "seed": seed, "steps": steps, "width": width, "height": height}
        return GeneratedAsset("image", data, "image/png", metadata)

    def _fail_if_asked(self) -> None:
        if self.config.fail == "engine":
            raise EngineError("the slow engine failed on purpose (fail=engine)", exit_code=1)
        if self.config.fail == "bug":
            raise RuntimeError("an unexpected bug in the slow engine (fail=bug)")
        if self.config.fail == "crash":
            os._exit(70)


def _colour(seed: int, adapters: Sequence[tuple[str, float]]) -> tuple[int, int, int]:
    """The seed's colour, shifted per channel by each adapter: (its name's hash byte - 128) x scale."""
    rng = random.Random(seed)
    rgb = [rng.randrange(256) for _ in range(3)]
    for name, scale in adapters:
        digest = hashlib.sha256(name.encode()).digest()
        rgb = [(value + round(scale * (digest[i] - 128))) % 256 for i, value in enumerate(rgb)]
    return (rgb[0], rgb[1], rgb[2])


def _png(colour: tuple[int, int, int], width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


__all__ = ["SlowBackend", "SlowConfig"]
