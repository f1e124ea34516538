"""Upscaling on stable-diffusion.cpp: the argv and the failure paths against the fake sd-cli, then the
real sd-cli and bindings on random-weight ESRGAN files built by the tests (``fixtures/esrgan.py``)."""

from __future__ import annotations

import io
import subprocess
import threading
import time

import pytest

from abstractvision import VisionManager
from abstractvision.backends import create_backend
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend
from abstractvision.errors import (
    BackendNotConfiguredError,
    CapabilityNotSupportedError,
    EngineError,
    GenerationCancelledError,
    ModelNotAvailableError,
)
from fixtures.images import make_png


def size_of(png: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).size


@pytest.fixture
def upscaler_file(tmp_path):
    """A stand-in upscaler for the fake sd-cli (it never reads it)."""
    path = tmp_path / "models" / "RealESRGAN_x4plus.pth"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"not real weights")
    return path


@pytest.fixture
def upscaler(fake_sd_cli, upscaler_file):
    return StableDiffusionCppVisionBackend(
        upscale_model=str(upscaler_file), sd_cli_path=str(fake_sd_cli.path), mode="cli"
    )


# ---- configuration and capabilities ---------------------------------------------------------------------
def test_an_upscaler_alone_offers_only_upscaling(upscaler):
    assert upscaler.get_capabilities().supported_tasks == ("image_upscale",)
    with pytest.raises(CapabilityNotSupportedError):
        VisionManager(backend=upscaler).generate_image("a cat")


def test_a_model_and_an_upscaler_offer_both(fake_sd_cli, model_file, upscaler_file):
    backend = StableDiffusionCppVisionBackend(model=str(model_file), upscale_model=str(upscaler_file))
    assert backend.get_capabilities().supported_tasks == ("text_to_image", "image_to_image", "image_upscale")
    infos = backend.list_provider_models(task="image_upscale")
    assert [(info.id, info.raw["role"]) for info in infos] == [(str(upscaler_file), "upscale_model")]


def test_no_upscaler_is_a_typed_error_naming_the_setting(fake_sd_cli, model_file):
    backend = StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path))
    with pytest.raises(CapabilityNotSupportedError, match="upscale_model=.*ABSTRACTVISION_SDCPP_UPSCALE_MODEL"):
        VisionManager(backend=backend).upscale_image(make_png(16, 16), scale=2)
    with pytest.raises(BackendNotConfiguredError, match="--upscale-model"):
        backend.upscale_image(None)  # called directly, past the manager's gate
    assert fake_sd_cli.runs() == []


def test_a_missing_upscaler_file_is_named_before_sd_cli_runs(fake_sd_cli, tmp_path):
    backend = StableDiffusionCppVisionBackend(
        upscale_model=str(tmp_path / "gone.pth"), sd_cli_path=str(fake_sd_cli.path)
    )
    with pytest.raises(ModelNotAvailableError, match="upscale_model: file not found") as info:
        VisionManager(backend=backend).upscale_image(make_png(16, 16))
    assert "never downloads" in str(info.value) and fake_sd_cli.runs() == []


@pytest.mark.parametrize("repeats", [0, 5, True, "2"])
def test_upscale_repeats_out_of_range_is_a_config_error(upscaler_file, repeats):
    with pytest.raises(BackendNotConfiguredError, match="upscale_repeats"):
        StableDiffusionCppVisionBackend(upscale_model=str(upscaler_file), upscale_repeats=repeats)


def test_the_settings_are_read_from_the_environment(upscaler_file):
    environ = {"ABSTRACTVISION_SDCPP_UPSCALE_MODEL": str(upscaler_file), "ABSTRACTVISION_SDCPP_UPSCALE_REPEATS": "2"}
    backend = create_backend("sdcpp", environ)
    assert (backend.config.upscale_model, backend.config.upscale_repeats) == (str(upscaler_file), 2)


# ---- CLI mode against the fake sd-cli ---------------------------------------------------------------------
def test_the_sd_cli_command_line(fake_sd_cli, upscaler_file):
    backend = StableDiffusionCppVisionBackend(
        upscale_model=str(upscaler_file),
        upscale_repeats=2,
        sd_cli_path=str(fake_sd_cli.path),
        mode="cli",
        extra_args="--upscale-tile-size 64",
    )
    source = make_png(16, 12)
    asset = VisionManager(backend=backend).upscale_image(source, scale=8)
    argv = fake_sd_cli.last_argv()
    image = argv[argv.index("-i") + 1]
    assert argv == [
        *("-M", "upscale", "--upscale-model", str(upscaler_file), "--upscale-repeats", "2"),
        *("-i", image, "--upscale-tile-size", "64", "-o", argv[-1]),
    ]
    assert image.endswith("input.png") and fake_sd_cli.runs()[-1]["init_sha256"] is not None
    assert size_of(asset.data) == (128, 96)  # x16 by the engine, then down to x8
    meta = asset.metadata
    assert meta["engine_scale"] == 16 and meta["resized_from"] == [256, 192] and meta["upscale_repeats"] == 2
    assert meta["model"] == "RealESRGAN_x4plus.pth" and meta["mode"] == "cli"


def test_progress_is_one_step_per_pass(fake_sd_cli, upscaler_file):
    backend = StableDiffusionCppVisionBackend(
        upscale_model=str(upscaler_file), upscale_repeats=3, sd_cli_path=str(fake_sd_cli.path), mode="cli"
    )
    fake_sd_cli.monkeypatch.setenv("FAKE_SD_CLI_UPSCALE_FACTOR", "2")
    events = []
    asset = VisionManager(backend=backend).upscale_image(make_png(8, 8), on_progress=events.append)
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        ("start", 0, 3),
        ("step", 1, 3),
        ("step", 2, 3),
        ("step", 3, 3),
        ("end", 3, 3),
    ]
    assert size_of(asset.data) == (64, 64)


def test_a_prompt_and_seed_are_recorded_as_ignored(upscaler):
    asset = VisionManager(backend=upscaler).upscale_image(make_png(8, 8), prompt="sharper", seed=3)
    assert asset.metadata["ignored_params"] == ["prompt", "seed"]


def test_an_upscaler_sd_cli_cannot_load_is_an_engine_error_not_the_input_back(fake_sd_cli, upscaler):
    fake_sd_cli.behave("noupscale")  # sd-cli logs the failure, saves the input unchanged and exits 0
    with pytest.raises(EngineError, match="ran 0 of 1 upscaler passes") as info:
        VisionManager(backend=upscaler).upscale_image(make_png(16, 16))
    assert "new_upscaler_ctx failed" in str(info.value)


def test_an_sd_cli_failure_carries_its_exit_code(fake_sd_cli, upscaler):
    fake_sd_cli.behave("fail")
    with pytest.raises(EngineError) as info:
        VisionManager(backend=upscaler).upscale_image(make_png(16, 16))
    assert info.value.exit_code == 3 and "fake failure" in str(info.value)


@pytest.mark.timeout(30)
def test_cancel_stops_a_running_upscale(fake_sd_cli, upscaler):
    fake_sd_cli.behave("hang")
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    started = time.perf_counter()
    try:
        with pytest.raises(GenerationCancelledError):
            VisionManager(backend=upscaler).upscale_image(make_png(16, 16), cancel=cancel)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 10


# ---- the real engine on random ESRGAN weights -------------------------------------------------------------
def direct_upscale(sd_cli, model, source, folder, repeats: int = 1) -> bytes:
    """sd-cli run by hand: ``-M upscale`` with the same file, no abstractvision code involved."""
    (folder / "in.png").write_bytes(source)
    argv = [str(sd_cli), "-M", "upscale", "--upscale-model", str(model), "--upscale-repeats", str(repeats)]
    done = subprocess.run([*argv, "-i", str(folder / "in.png"), "-o", str(folder / "direct.png")], capture_output=True)
    assert done.returncode == 0, done.stdout[-2000:]
    return (folder / "direct.png").read_bytes()


def rgb(data: bytes) -> bytes:
    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB").tobytes()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_real_sd_cli_upscales_by_the_models_factor_pixel_for_pixel(sd_cli_binary, esrgan_x4, tmp_path):
    backend = StableDiffusionCppVisionBackend(upscale_model=str(esrgan_x4), sd_cli_path=str(sd_cli_binary), mode="cli")
    source = make_png(24, 16, (40, 90, 200))
    events = []
    asset = VisionManager(backend=backend).upscale_image(source, on_progress=events.append)
    assert size_of(asset.data) == (96, 64) and asset.metadata["engine_scale"] == 4
    assert [(e.phase, e.step) for e in events] == [("start", 0), ("step", 1), ("end", 1)]
    assert rgb(asset.data) == rgb(direct_upscale(sd_cli_binary, esrgan_x4, source, tmp_path))
    scaled = VisionManager(backend=backend).upscale_image(source, scale=2.5)
    assert size_of(scaled.data) == (60, 40) and scaled.metadata["resized_from"] == [96, 64]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_real_sd_cli_repeats_an_x2_model(sd_cli_binary, esrgan_x2, tmp_path):
    backend = StableDiffusionCppVisionBackend(
        upscale_model=str(esrgan_x2), upscale_repeats=2, sd_cli_path=str(sd_cli_binary), mode="cli"
    )
    asset = VisionManager(backend=backend).upscale_image(make_png(12, 8), resolution=(40, 40))
    assert size_of(asset.data) == (40, 40)
    assert asset.metadata["engine_scale"] == 4 and asset.metadata["resized_from"] == [48, 32]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_real_sd_cli_on_a_file_that_is_no_upscaler_is_an_engine_error(sd_cli_binary, tmp_path):
    bad = tmp_path / "not-esrgan.safetensors"
    bad.write_bytes(b"garbage, not a model")
    backend = StableDiffusionCppVisionBackend(upscale_model=str(bad), sd_cli_path=str(sd_cli_binary), mode="cli")
    with pytest.raises(EngineError, match="ran 0 of 1 upscaler passes"):
        VisionManager(backend=backend).upscale_image(make_png(16, 16))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_python_mode_matches_sd_cli_and_keeps_the_upscaler_loaded(sd_cli_binary, esrgan_x4, tmp_path):
    source = make_png(20, 12, (200, 60, 20))
    with StableDiffusionCppVisionBackend(upscale_model=str(esrgan_x4), mode="python") as backend:
        manager = VisionManager(backend=backend)
        events = []
        first = manager.upscale_image(source, on_progress=events.append)
        second = manager.upscale_image(source, scale=2)
        assert [(e.phase, e.step) for e in events] == [("start", 0), ("step", 1), ("end", 1)]
        assert first.metadata["mode"] == "python" and first.metadata["load_s"] > 0
        assert second.metadata["load_s"] == 0  # loaded once, kept
        assert size_of(first.data) == (80, 48) and size_of(second.data) == (40, 24)
        assert rgb(first.data) == rgb(direct_upscale(sd_cli_binary, esrgan_x4, source, tmp_path))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_python_mode_honours_a_cancel_between_passes(esrgan_x2):
    cancel = threading.Event()
    steps = []

    def on_progress(event):
        if event.phase == "step":
            steps.append(event.step)
            cancel.set()

    with StableDiffusionCppVisionBackend(upscale_model=str(esrgan_x2), upscale_repeats=3, mode="python") as backend:
        with pytest.raises(GenerationCancelledError):
            VisionManager(backend=backend).upscale_image(make_png(8, 8), on_progress=on_progress, cancel=cancel)
    assert steps == [1]
