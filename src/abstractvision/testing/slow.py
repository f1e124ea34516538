"""A backend that takes its time on purpose: for server, queue and scaling tests and benchmarks.

It sleeps ``step_s`` per step (checking cancel at every step, like Diffusers' step callback),
reports each step, can send a preview per step, and can fail the way engines do. Its pictures are
small solid-colour PNGs whose colour comes from the seed, so a test can tell results apart.
Register it to serve it: ``register_backend("slow", "abstractvision.testing.slow:SlowBackend")``.
"""

from __future__ import annotations

import io
import os
import random
import threading
import time
from dataclasses import dataclass

from ..backends import VisionBackend
from ..config import setting
from ..errors import EngineError, GenerationCancelledError
from ..progress import as_reporter
from ..types import GeneratedAsset, VisionBackendCapabilities


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
        steps = request.steps or self.config.steps
        seed = request.seed if request.seed is not None else random.randrange(2**32)
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
                    preview = _png(seed, 8, 8) if self.config.previews else None
                    reporter.step(step, steps)  # raises once cancelled, like an engine's step callback
                    if preview is not None:
                        reporter.report("preview", step=step, total_steps=steps, preview=preview)
            except GenerationCancelledError:  # wherever the cancel was seen, the run stopped at this step
                self.stopped_at.append(step)
                raise
            width = getattr(request, "width", None) or 32
            height = getattr(request, "height", None) or 32
            data = _png(seed, width, height)
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


def _png(seed: int, width: int, height: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3))).save(buffer, format="PNG")
    return buffer.getvalue()


__all__ = ["SlowBackend", "SlowConfig"]
