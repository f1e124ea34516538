"""Upscaling on the Diffusers backend, against a tiny random-weight ``StableDiffusionUpscalePipeline``
built by the tests (the x4 upscaler's architecture: 7-channel UNet, 4x VAE)."""

from __future__ import annotations

import io
import threading

import pytest

from abstractvision import VisionManager
from abstractvision.backends.huggingface_diffusers import (
    HuggingFaceDiffusersBackendConfig,
    HuggingFaceDiffusersVisionBackend,
)
from abstractvision.errors import (
    BackendNotConfiguredError,
    CapabilityNotSupportedError,
    GenerationCancelledError,
    InvalidRequestError,
    ModelNotAvailableError,
)
from fixtures.images import make_png

numpy = pytest.importorskip("numpy", reason='needs pip install "abstractvision[diffusers]"')


def size_of(png: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).size


def pixels(png: bytes) -> numpy.ndarray:
    from PIL import Image

    return numpy.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# ---- without a pipeline: capabilities and the refusal say how to enable it --------------------------------
def test_image_upscale_is_offered_only_with_an_upscaler():
    plain = HuggingFaceDiffusersVisionBackend(HuggingFaceDiffusersBackendConfig(model_id="org/model"))
    assert "image_upscale" not in plain.get_capabilities().supported_tasks
    alone = HuggingFaceDiffusersVisionBackend(HuggingFaceDiffusersBackendConfig(upscaler="org/upscaler"))
    assert alone.get_capabilities().supported_tasks == ("image_upscale",)  # no model: it only upscales
    both = HuggingFaceDiffusersVisionBackend(HuggingFaceDiffusersBackendConfig(model_id="org/m", upscaler="org/u"))
    assert both.get_capabilities().supported_tasks == ("text_to_image", "image_to_image", "image_upscale")


def test_a_missing_upscaler_is_a_typed_error_naming_the_setting():
    backend = HuggingFaceDiffusersVisionBackend(HuggingFaceDiffusersBackendConfig(model_id="org/model"))
    with pytest.raises(CapabilityNotSupportedError) as info:
        VisionManager(backend=backend).upscale_image(make_png(16, 16), scale=2)
    assert "upscaler=" in str(info.value) and "ABSTRACTVISION_DIFFUSERS_UPSCALER" in str(info.value)
    with pytest.raises(BackendNotConfiguredError, match="--upscaler"):
        backend.upscale_image(None)  # called directly, past the manager's gate
    assert not backend.loaded


def test_the_upscaler_setting_is_read_from_the_environment():
    from abstractvision.backends import create_backend

    backend = create_backend("diffusers", {"ABSTRACTVISION_DIFFUSERS_UPSCALER": "org/x4"})
    assert backend.config.upscaler == "org/x4"


# ---- the real (tiny) pipeline ---------------------------------------------------------------------------
@pytest.mark.slow
def test_upscale_matches_a_raw_pipeline_call_pixel_for_pixel(tiny_upscaler_backend, tiny_upscale_pipeline):
    import torch
    from diffusers import StableDiffusionUpscalePipeline
    from PIL import Image

    source = make_png(16, 12, (30, 160, 90))
    asset = VisionManager(backend=tiny_upscaler_backend).upscale_image(source, prompt="a cat", steps=2, seed=7)
    pipe = StableDiffusionUpscalePipeline.from_pretrained(str(tiny_upscale_pipeline), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    raw = pipe(
        prompt="a cat",
        image=Image.open(io.BytesIO(source)).convert("RGB"),
        num_inference_steps=2,
        generator=torch.Generator("cpu").manual_seed(7),
        output_type="np",
    )
    expected = numpy.asarray(pipe.numpy_to_pil(raw.images)[0])
    assert expected.shape == (48, 64, 3)  # the engine's own x4
    assert numpy.array_equal(pixels(asset.data), expected)
    meta = asset.metadata
    assert meta["task"] == "image_upscale" and meta["pipeline"] == "StableDiffusionUpscalePipeline"
    assert meta["seed"] == 7 and meta["steps"] == 2 and meta["prompt"] == "a cat"
    assert meta["guidance_scale"] == 9.0 and meta["noise_level"] == 20  # the pipeline's defaults, recorded
    assert meta["engine_scale"] == 4 and "resized_from" not in meta


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("source", "request_size", "expected"),
    [
        ((16, 16), {"scale": 2}, (32, 32)),
        ((20, 14), {"scale": 1.5}, (30, 21)),
        ((16, 16), {"scale": 8}, (128, 128)),  # past the engine's x4: Pillow takes it the rest of the way
        ((16, 16), {"resolution": (100, 40)}, (100, 40)),
        ((20, 14), {}, (80, 56)),  # the pipeline crops 14 to 12 rows; the result is still 4x the input
    ],
)
def test_the_result_is_exactly_the_requested_size(tiny_upscaler_backend, source, request_size, expected):
    asset = VisionManager(backend=tiny_upscaler_backend).upscale_image(
        make_png(*source), steps=1, seed=1, **request_size
    )
    assert size_of(asset.data) == expected
    assert (asset.metadata["width"], asset.metadata["height"]) == expected
    assert asset.metadata["source_width"] == source[0] and asset.metadata["engine_scale"] == 4


@pytest.mark.slow
def test_progress_reports_every_step_and_the_load(tiny_upscaler_backend):
    events = []
    VisionManager(backend=tiny_upscaler_backend).upscale_image(
        make_png(16, 16), scale=2, steps=3, on_progress=events.append
    )
    assert [e.phase for e in events] == ["start", "load", "step", "step", "step", "end"]
    assert [(e.step, e.total_steps) for e in events if e.phase == "step"] == [(1, 3), (2, 3), (3, 3)]
    events.clear()
    VisionManager(backend=tiny_upscaler_backend).upscale_image(make_png(16, 16), steps=2, on_progress=events.append)
    assert "load" not in [e.phase for e in events]  # loaded once, kept


@pytest.mark.slow
def test_preload_loads_the_upscaler_of_a_backend_without_a_model(tiny_upscaler_backend):
    tiny_upscaler_backend.preload()
    assert tiny_upscaler_backend.loaded
    events = []
    VisionManager(backend=tiny_upscaler_backend).upscale_image(make_png(16, 16), steps=1, on_progress=events.append)
    assert "load" not in [e.phase for e in events]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_cancel_stops_the_upscale_loop_and_the_pipeline_stays_usable(tiny_upscaler_backend):
    manager = VisionManager(backend=tiny_upscaler_backend)
    manager.upscale_image(make_png(16, 16), steps=1)  # loads the pipeline
    unet = tiny_upscaler_backend._upscaler.pipe.unet
    unet_calls = []
    handle = unet.register_forward_hook(lambda *args: unet_calls.append(1))
    cancel = threading.Event()

    def on_progress(event):
        if event.phase == "step" and event.step == 2:
            cancel.set()

    try:
        with pytest.raises(GenerationCancelledError):
            manager.upscale_image(make_png(16, 16), steps=50, on_progress=on_progress, cancel=cancel)
    finally:
        handle.remove()
    assert len(unet_calls) == 2
    assert size_of(manager.upscale_image(make_png(16, 16), steps=1).data) == (64, 64)


@pytest.mark.slow
def test_extra_pipeline_arguments_are_forwarded_and_unknown_ones_refused(tiny_upscaler_backend):
    manager = VisionManager(backend=tiny_upscaler_backend)
    asset = manager.upscale_image(make_png(16, 16), steps=1, noise_level=100, negative_prompt="blur")
    assert asset.metadata["noise_level"] == 100 and asset.metadata["negative_prompt"] == "blur"
    with pytest.raises(InvalidRequestError, match="not_a_pipeline_argument"):
        manager.upscale_image(make_png(16, 16), steps=1, not_a_pipeline_argument=1)


@pytest.mark.slow
def test_one_backend_generates_and_upscales_and_unload_releases_both(tiny_diffusers_pipeline, tiny_upscale_pipeline):
    config = HuggingFaceDiffusersBackendConfig(
        model_id=str(tiny_diffusers_pipeline), upscaler=str(tiny_upscale_pipeline), device="cpu"
    )
    with HuggingFaceDiffusersVisionBackend(config) as backend:
        manager = VisionManager(backend=backend)
        picture = manager.generate_image("a cat", width=32, height=32, steps=1)
        assert size_of(manager.upscale_image(picture.data, scale=2, steps=1).data) == (64, 64)
        backend.unload()
        assert not backend.loaded and backend._upscaler is None
        assert size_of(manager.upscale_image(picture.data, scale=2, steps=1).data) == (64, 64)  # reloads


@pytest.mark.slow
def test_a_generation_pipeline_as_upscaler_is_refused_by_name(tiny_diffusers_pipeline):
    backend = HuggingFaceDiffusersVisionBackend(
        HuggingFaceDiffusersBackendConfig(upscaler=str(tiny_diffusers_pipeline), device="cpu")
    )
    with pytest.raises(BackendNotConfiguredError, match="StableDiffusionPipeline, not an upscale pipeline"):
        VisionManager(backend=backend).upscale_image(make_png(16, 16), steps=1)


def test_a_single_file_upscaler_is_refused_before_loading(tmp_path):
    weights = tmp_path / "RealESRGAN_x4plus.safetensors"
    weights.write_bytes(b"not read")
    backend = HuggingFaceDiffusersVisionBackend(HuggingFaceDiffusersBackendConfig(upscaler=str(weights)))
    with pytest.raises(BackendNotConfiguredError, match="single file"):
        VisionManager(backend=backend).upscale_image(make_png(16, 16))


@pytest.mark.slow
def test_an_uncached_upscaler_is_refused_without_touching_the_network(block_network, tmp_path):
    backend = HuggingFaceDiffusersVisionBackend(
        HuggingFaceDiffusersBackendConfig(upscaler="someorg/not-cached-upscaler", cache_dir=str(tmp_path))
    )
    with pytest.raises(ModelNotAvailableError, match="hf download someorg/not-cached-upscaler"):
        VisionManager(backend=backend).upscale_image(make_png(16, 16))
    assert block_network == []
