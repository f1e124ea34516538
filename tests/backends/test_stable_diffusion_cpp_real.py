"""stable-diffusion.cpp for real: sd-cli and the bindings on a random-weight, full-size SD 1.x file.

Kept few and small (64x64, 1-2 steps; the model is loaded once per session in python mode) because
each sd.cpp run costs seconds of CPU. The checkpoint and the engine builds are cached in ~/.cache.
"""

from __future__ import annotations

import io
import subprocess

import pytest

from abstractvision import VisionManager
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend
from abstractvision.errors import InvalidRequestError
from fixtures.images import make_png

pytestmark = pytest.mark.slow

PROMPT = "a lighthouse at dusk"


def pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    return image.mode, image.size, image.convert("RGB").tobytes()


def direct_sd_cli(sd_cli: str, checkpoint: str, folder, *args: str) -> bytes:
    """The raw engine: sd-cli run by hand with the same settings the backend should pass."""
    output = folder / "direct.png"
    done = subprocess.run(
        [sd_cli, "-m", checkpoint, *args, "-o", str(output)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return output.read_bytes()


def edit_inputs(folder):
    image = make_png(64, 64, color=(30, 120, 200))
    mask = make_png(64, 64, mode="L")
    (folder / "init.png").write_bytes(image)
    (folder / "mask.png").write_bytes(mask)
    return image, mask


@pytest.fixture
def cli_manager(sd_cli_binary, sd15_checkpoint):
    backend = StableDiffusionCppVisionBackend(model=str(sd15_checkpoint), sd_cli_path=str(sd_cli_binary), mode="cli")
    return VisionManager(backend=backend)


def test_cli_text_to_image_is_pixel_identical_to_direct_sd_cli(cli_manager, sd_cli_binary, sd15_checkpoint, tmp_path):
    events = []
    asset = cli_manager.generate_image(
        PROMPT, width=64, height=64, steps=2, seed=1234, guidance_scale=7.0, on_progress=events.append
    )
    direct = direct_sd_cli(
        str(sd_cli_binary), str(sd15_checkpoint), tmp_path,
        "-p", PROMPT, "-W", "64", "-H", "64", "--steps", "2", "-s", "1234", "--cfg-scale", "7.0",
    )  # fmt: skip
    assert pixels(asset.data) == pixels(direct)
    assert [(e.phase, e.step) for e in events] == [("start", 0), ("step", 1), ("step", 2), ("end", 2)]
    assert asset.metadata["mode"] == "cli" and asset.metadata["seed"] == 1234


@pytest.mark.timeout(300)
def test_cli_the_largest_seed_runs_and_is_recorded_and_one_more_is_refused(cli_manager):
    top = cli_manager.backend.get_capabilities().max_seed
    asset = cli_manager.generate_image(PROMPT, width=64, height=64, steps=1, seed=top)
    assert asset.metadata["seed"] == top and pixels(asset.data)[1] == (64, 64)
    with pytest.raises(InvalidRequestError) as info:
        cli_manager.generate_image(PROMPT, width=64, height=64, steps=1, seed=top + 1)
    assert info.value.field == "seed" and f"0..{top}" in str(info.value)


@pytest.mark.timeout(300)
def test_why_seeds_stop_at_32_bits_sd_cli_cpu_rng_wraps_a_larger_one(sd_cli_binary, sd15_checkpoint, tmp_path):
    """The engine fact behind sd.cpp's max_seed: with ``--rng cpu`` seed s and s + 2**32 are the same image."""
    args = ("-p", PROMPT, "-W", "64", "-H", "64", "--steps", "1", "--rng", "cpu")
    low = direct_sd_cli(str(sd_cli_binary), str(sd15_checkpoint), tmp_path, *args, "-s", "7")
    high = direct_sd_cli(str(sd_cli_binary), str(sd15_checkpoint), tmp_path, *args, "-s", str(7 + 2**32))
    assert pixels(low) == pixels(high)


def test_cli_image_to_image_with_mask_is_pixel_identical_to_direct_sd_cli(
    cli_manager, sd_cli_binary, sd15_checkpoint, tmp_path
):
    image, mask = edit_inputs(tmp_path)
    events = []
    asset = cli_manager.edit_image(
        PROMPT, image, mask=mask, steps=2, seed=99, guidance_scale=7.0, strength=0.5, on_progress=events.append
    )
    direct = direct_sd_cli(
        str(sd_cli_binary), str(sd15_checkpoint), tmp_path,
        "-p", PROMPT, "-W", "64", "-H", "64", "--steps", "2", "-s", "99", "--cfg-scale", "7.0",
        "-i", str(tmp_path / "init.png"), "--strength", "0.5", "--mask", str(tmp_path / "mask.png"),
    )  # fmt: skip
    assert pixels(asset.data) == pixels(direct)
    assert [e.phase for e in events][0] == "start" and events[-1].phase == "end"
    assert any(e.phase == "step" for e in events)  # img2img samples steps * strength steps


def test_python_text_to_image_is_deterministic_and_reports_progress(sd_python_backend):
    manager = VisionManager(backend=sd_python_backend)
    events = []
    first = manager.generate_image(PROMPT, width=64, height=64, steps=2, seed=7, on_progress=events.append)
    again = manager.generate_image(PROMPT, width=64, height=64, steps=2, seed=7)  # no callback after one: no crash
    other = manager.generate_image(PROMPT, width=64, height=64, steps=2, seed=8)
    assert pixels(first.data) == pixels(again.data)
    assert pixels(first.data) != pixels(other.data)
    assert pixels(first.data)[:2] == ("RGB", (64, 64))
    assert [(e.phase, e.step) for e in events] == [("start", 0), ("step", 1), ("step", 2), ("end", 2)]
    assert first.metadata["mode"] == "python" and first.metadata["seed"] == 7


def test_python_mode_makes_the_same_pixels_as_sd_cli(sd_python_backend, sd_cli_binary, sd15_checkpoint, tmp_path):
    asset = VisionManager(backend=sd_python_backend).generate_image(
        PROMPT, width=64, height=64, steps=1, seed=3, guidance_scale=7.0
    )
    direct = direct_sd_cli(
        str(sd_cli_binary), str(sd15_checkpoint), tmp_path,
        "-p", PROMPT, "-W", "64", "-H", "64", "--steps", "1", "-s", "3", "--cfg-scale", "7.0",
    )  # fmt: skip
    assert pixels(asset.data) == pixels(direct)


def test_python_image_to_image_is_deterministic_and_reports_progress(sd_python_backend, tmp_path):
    image, mask = edit_inputs(tmp_path)
    manager = VisionManager(backend=sd_python_backend)
    events = []
    first = manager.edit_image(PROMPT, image, mask=mask, steps=2, seed=5, strength=0.5, on_progress=events.append)
    again = manager.edit_image(PROMPT, image, mask=mask, steps=2, seed=5, strength=0.5)
    assert pixels(first.data) == pixels(again.data)
    assert pixels(first.data)[:2] == ("RGB", (64, 64))
    assert events[0].phase == "start" and events[-1].phase == "end"
    assert any(e.phase == "step" for e in events)
    assert first.metadata["strength"] == 0.5


def test_python_mode_serialises_concurrent_calls(sd_python_backend):
    from concurrent.futures import ThreadPoolExecutor

    manager = VisionManager(backend=sd_python_backend)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(manager.generate_image, PROMPT, width=64, height=64, steps=1, seed=21) for _ in range(2)]
        first, second = (future.result() for future in futures)
    assert pixels(first.data) == pixels(second.data)


_AFTER_BACKEND_CALL = """
import sys
import stable_diffusion_cpp
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend
from abstractvision.types import ImageGenerationRequest

checkpoint = sys.argv[1]
backend = StableDiffusionCppVisionBackend(model=checkpoint, mode="python")
request = backend.normalize_generate_image_request(ImageGenerationRequest("a", width=64, height=64, steps=1, seed=1))
backend.generate_image_with_progress(request, print)
raw = backend._engine._model
raw.generate_image("a", width=64, height=64, sample_steps=1, seed=1)  # no callback: crashed on 0.4.5
print("survived")
"""


def test_bindings_used_directly_after_a_backend_call_do_not_crash(sd_python_backend, sd15_checkpoint):
    """The 0.4.5 dangling progress hook: the backend clears it, so a later callback-less call is safe."""
    import os
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", _AFTER_BACKEND_CALL, str(sd15_checkpoint)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "survived" in done.stdout
