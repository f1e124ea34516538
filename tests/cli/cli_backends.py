"""Backends the CLI tests register by name (entry point or backend table), not engines.

``EchoBackend`` makes a real PNG and echoes the request it got into the metadata, so a test can
see exactly which options the CLI sent (and which it left out). It reports steps, fails on seed
13 (a provider error), and says on stderr when it is closed, so a REPL test can see a backend
switch release the previous one. ``EchoBackend.calls`` counts the generations of every instance
(the CLI builds its own), so a test can tell that a command failed before generating.
``FolderBreakingBackend`` replaces the folder named by its ``output_folder`` parameter with a file
while it generates: the disk changing under a long run. ``SlowVideoBackend`` is the server tests'
slow backend that also makes (stand-in) videos and upscales (with Pillow), so docs/server.md's
video and upscale examples can run.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

from abstractvision.backends import VisionBackend
from abstractvision.errors import ProviderError
from abstractvision.progress import as_reporter
from abstractvision.testing.slow import SlowBackend
from abstractvision.types import GeneratedAsset, ProviderModelInfo, VisionBackendCapabilities

FAILING_SEED = 13


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


class EchoBackend(VisionBackend):
    name = "echo"
    calls: list[str] = []  # shared on purpose: one log for every instance

    def get_capabilities(self) -> VisionBackendCapabilities:
        return VisionBackendCapabilities(supported_tasks=("text_to_image", "image_to_image"), supports_mask=True)

    def _make(self, task, request, progress_callback):
        EchoBackend.calls.append(task)
        reporter = as_reporter(progress_callback, task)
        steps = request.steps or 2
        reporter.start(total_steps=steps)
        for step in range(1, steps + 1):
            reporter.step(step, steps)
        if request.seed == FAILING_SEED:
            raise ProviderError(f"simulated provider failure for seed {FAILING_SEED}", status=500)
        echoed = {
            f.name: getattr(request, f.name)
            for f in dataclasses.fields(request)
            if not isinstance(getattr(request, f.name), bytes)
        }
        echoed["image_bytes"] = len(getattr(request, "image", b"") or b"")
        echoed["mask_bytes"] = len(getattr(request, "mask", b"") or b"")
        reporter.end(total_steps=steps)
        metadata = {"seed": request.seed, "request": echoed}
        return GeneratedAsset("image", _png(8, 8), "image/png", metadata)

    def generate_image(self, request):
        return self._make("text_to_image", request, None)

    def edit_image(self, request):
        return self._make("image_to_image", request, None)

    def generate_image_with_progress(self, request, progress_callback=None):
        return self._make("text_to_image", request, progress_callback)

    def edit_image_with_progress(self, request, progress_callback=None):
        return self._make("image_to_image", request, progress_callback)

    def list_provider_models(self, task=None):
        models = [
            ProviderModelInfo("echo-image", owned_by="tests", capabilities=("text_to_image", "image_to_image")),
            ProviderModelInfo("echo-video", owned_by="tests", capabilities=("text_to_video",)),
        ]
        return [m for m in models if task is None or task in m.capabilities]

    def unload(self):
        print(f"[{self.name}] unloaded", file=sys.stderr, flush=True)


class OtherEchoBackend(EchoBackend):
    name = "echo2"


class FolderBreakingBackend(EchoBackend):
    name = "echo-breaks-folder"

    def _make(self, task, request, progress_callback):
        folder = Path(request.extra["output_folder"])
        shutil.rmtree(folder)
        folder.write_text("a file where the output folder was")
        return super()._make(task, request, progress_callback)


#: An MP4 file's first box and nothing else: enough to be a "video/mp4" result, not a playable clip.
STAND_IN_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


class SlowVideoBackend(SlowBackend):
    name = "slow-video"

    def get_capabilities(self) -> VisionBackendCapabilities:
        caps = super().get_capabilities()
        tasks = (*caps.supported_tasks, "text_to_video", "image_to_video", "image_upscale")
        return dataclasses.replace(caps, supported_tasks=tasks)

    def upscale_image(self, request):
        """Pillow's resize standing in for an upscaler, to the size the request asks for."""
        from abstractvision.backends._upscale import fit_upscaled
        from abstractvision.media import decode_image, encode_png

        picture, metadata = fit_upscaled(decode_image(request.image), request)
        return GeneratedAsset("image", encode_png(picture), "image/png", {"model": self.config.model_id, **metadata})

    def generate_video(self, request):
        return GeneratedAsset("video", STAND_IN_MP4, "video/mp4", {"model": self.config.model_id, "seed": request.seed})

    def image_to_video(self, request):
        return self.generate_video(request)
