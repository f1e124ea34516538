"""A third-party backend written as a plugin author would: one module, declared settings, an entry point.

The test suite installs it the way pip would leave it (a ``.dist-info`` folder with an
``abstractvision.backends`` entry point on the path) and checks that its declared settings reach
it from the environment and from ``--model`` / its own flags, and that it passes the shipped
contract suite (``contract_toyvision.py``, run as the plugin's own test file).

It draws solid-colour PNGs: the colour comes from its ``color`` setting and the seed, so a test can
see which settings arrived.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field

from abstractvision.backends import VisionBackend
from abstractvision.config import setting
from abstractvision.progress import as_reporter
from abstractvision.types import GeneratedAsset, VisionBackendCapabilities

COLORS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


@dataclass(frozen=True)
class ToyConfig:
    """The toy engine's settings: each declared once, with its variable, flag and help."""

    model_id: str = setting("toy-1", env="TOYVISION_MODEL", flag="--model", help="Which toy model draws.")
    color: str = setting("red", env="TOYVISION_COLOR", help="Base colour of the pictures: red, green or blue.")
    api_key: str | None = setting(env="TOYVISION_API_KEY", secret=True, help="Key of the toy service.")
    steps: int = field(default=3)  # a plain field: Python-only, no variable or flag


class ToyBackend(VisionBackend):
    name = "toy"
    config_class = ToyConfig

    def __init__(self, config: ToyConfig | None = None):
        self.config = config or ToyConfig()

    def get_capabilities(self) -> VisionBackendCapabilities:
        return VisionBackendCapabilities(supported_tasks=("text_to_image", "image_to_image"), supports_mask=True)

    def _draw(self, task: str, request, progress_callback) -> GeneratedAsset:
        from PIL import Image

        reporter = as_reporter(progress_callback, task)
        steps = request.steps or self.config.steps
        reporter.start(total_steps=steps)
        for step in range(1, steps + 1):
            reporter.step(step, steps)
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        base = COLORS.get(self.config.color, COLORS["red"])
        color = tuple((value + seed) % 256 for value in base)
        buffer = io.BytesIO()
        size = (getattr(request, "width", None) or 32, getattr(request, "height", None) or 32)  # edits: no size
        Image.new("RGB", size, color).save(buffer, format="PNG")
        reporter.end(total_steps=steps)
        metadata = {"model": self.config.model_id, "color": self.config.color, "seed": seed, "steps": steps}
        return GeneratedAsset("image", buffer.getvalue(), "image/png", metadata)

    def generate_image(self, request) -> GeneratedAsset:
        return self._draw("text_to_image", request, None)

    def edit_image(self, request) -> GeneratedAsset:
        return self._draw("image_to_image", request, None)

    def generate_image_with_progress(self, request, progress_callback=None) -> GeneratedAsset:
        return self._draw("text_to_image", request, progress_callback)

    def edit_image_with_progress(self, request, progress_callback=None) -> GeneratedAsset:
        return self._draw("image_to_image", request, progress_callback)
