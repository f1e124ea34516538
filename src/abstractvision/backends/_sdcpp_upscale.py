"""stable-diffusion.cpp upscaling: an ESRGAN-family model (``upscale_model``), ``upscale_repeats`` passes.

CLI mode runs ``sd-cli -M upscale --upscale-model FILE --upscale-repeats N -i IN -o OUT``, which
needs no diffusion model; Python mode keeps an upscaler-only bindings context loaded. Both report
one step per pass. The engine's factor is the model's (x4 for RealESRGAN_x4plus, read by sd.cpp
from the weights) to the power of the passes; :func:`._upscale.fit_upscaled` then resizes to the
requested ``scale``/``resolution``. An ESRGAN model takes no prompt and no seed: a request that
sets them gets ``ignored_params`` in its metadata. Nothing is downloaded: the file must exist.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from ..media import decode_image, encode_png
from ..progress import ProgressReporter
from ..types import GeneratedAsset, ImageUpscaleRequest
from ._upscale import fit_upscaled, prompt_fields


class SdcppUpscaler:
    """Runs a backend's upscales; holds the Python mode's upscaler context between calls."""

    def __init__(self, config: Any):
        self.config = config
        self._bindings: Any = None  # BindingsUpscaler, made on the first python-mode upscale
        self._lock = threading.Lock()

    def preload(self, mode: str) -> None:
        """Check the file; in Python mode also load the upscaler (once)."""
        self.config.upscaler_file()
        if mode == "python":
            self._context().load()

    def unload(self) -> None:
        with self._lock:
            context, self._bindings = self._bindings, None
        if context is not None:
            context.unload()

    def run(
        self, request: ImageUpscaleRequest, reporter: ProgressReporter, upscaler: Path, mode: str, sd_cli: str | None
    ) -> GeneratedAsset:
        """Upscale with the ``upscaler`` file in ``mode`` (``sd_cli``: the executable, for CLI mode), then
        fit to the requested size."""
        passes = self.config.upscale_repeats
        reporter.start(total_steps=passes)
        if mode == "cli":
            picture, timings = self._run_cli(request.image, upscaler, passes, reporter, sd_cli)
        else:
            picture, load_s, engine_s = self._context().upscale(request.image, passes, reporter)
            timings = {"load_s": round(load_s, 4), "engine_s": round(engine_s, 4)}
        picture, sizes = fit_upscaled(picture, request)
        metadata: dict[str, Any] = {"model": upscaler.name, "mode": mode, "upscale_repeats": passes, **sizes}
        ignored = prompt_fields(request)
        if ignored:
            metadata["ignored_params"] = ignored
        if mode == "cli" and self.config.extra_args:
            metadata["extra_args"] = list(self.config.extra_args)
        asset = GeneratedAsset("image", encode_png(picture), "image/png", {**metadata, **timings})
        reporter.end(total_steps=passes)
        return asset

    def _run_cli(
        self, image: bytes, upscaler: Path, passes: int, reporter: ProgressReporter, sd_cli: str | None
    ) -> tuple[Any, dict[str, float]]:
        from ._sdcpp_cli import PassParser, build_upscale_argv, read_upscaled, run_process, write_input

        with tempfile.TemporaryDirectory(prefix="abstractvision-sdcpp-") as tmp:
            folder = Path(tmp)
            output, source = folder / "output.png", write_input(folder, "input", image)
            argv = build_upscale_argv(sd_cli, upscaler, passes, source, output, self.config.extra_args)
            parser = PassParser(passes)
            result = run_process(
                argv, cwd=self.config.cwd or folder, timeout_s=self.config.timeout_s, reporter=reporter, parser=parser
            )
            data, _ = read_upscaled(result, output, parser)
        return decode_image(data), {"engine_s": round(result.elapsed_s, 4)}

    def _context(self) -> Any:
        from ._sdcpp_python import BindingsUpscaler

        with self._lock:
            if self._bindings is None:
                self._bindings = BindingsUpscaler(str(self.config.upscaler_file()))
            return self._bindings


__all__ = ["SdcppUpscaler"]
