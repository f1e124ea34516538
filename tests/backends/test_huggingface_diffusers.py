"""The Diffusers backend against a real tiny random-weight pipeline built by the tests."""

from __future__ import annotations

import io

import numpy
import pytest

from abstractvision import VisionManager
from abstractvision.config import load_settings
from abstractvision.errors import BackendNotConfiguredError, InvalidRequestError
from abstractvision.media import read_png_metadata

pytestmark = pytest.mark.slow

SMALL = {"width": 64, "height": 64, "steps": 2}


def pixels(png: bytes) -> numpy.ndarray:
    from PIL import Image

    return numpy.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def raw_pipeline_pixels(folder, seed: int, **call) -> numpy.ndarray:
    """The same request made straight through Diffusers, with no abstractvision code involved."""
    import torch
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(folder), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    image = pipe(**call, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return numpy.asarray(image.convert("RGB"))


def test_text_to_image_matches_a_raw_pipeline_call_pixel_for_pixel(tiny_diffusers_backend, tiny_diffusers_pipeline):
    asset = VisionManager(backend=tiny_diffusers_backend).generate_image("a red cat", seed=42, **SMALL)
    expected = raw_pipeline_pixels(
        tiny_diffusers_pipeline, 42, prompt="a red cat", width=64, height=64, num_inference_steps=2
    )
    assert numpy.array_equal(pixels(asset.data), expected)


def test_metadata_records_everything_needed_to_reproduce(tiny_diffusers_backend, tiny_diffusers_pipeline):
    asset = VisionManager(backend=tiny_diffusers_backend).generate_image("a cat", **SMALL)
    meta = asset.metadata
    assert isinstance(meta["seed"], int)
    assert meta["steps"] == 2 and meta["width"] == 64 and meta["height"] == 64
    assert meta["guidance_scale"] == 7.5  # the pipeline's own default, recorded
    assert meta["scheduler"] == "DDIMScheduler"
    assert meta["torch_dtype"] == "float32" and meta["device"] == "cpu"
    assert meta["model"] == str(tiny_diffusers_pipeline)
    assert read_png_metadata(asset.data)["seed"] == meta["seed"]
    again = VisionManager(backend=tiny_diffusers_backend).generate_image("a cat", seed=meta["seed"], **SMALL)
    assert numpy.array_equal(pixels(again.data), pixels(asset.data))


def test_config_from_settings_reads_the_environment_under_explicit_values(tiny_diffusers_pipeline):
    from abstractvision.backends import create_backend

    environ = {"ABSTRACTVISION_DIFFUSERS_MODEL": str(tiny_diffusers_pipeline), "ABSTRACTVISION_DIFFUSERS_DEVICE": "cpu"}
    settings = load_settings(environ=environ)
    backend = create_backend("diffusers", settings, torch_dtype="float32", allow_download=None)
    assert backend.config.model_id == str(tiny_diffusers_pipeline)
    assert backend.config.device == "cpu" and backend.config.torch_dtype == "float32"
    assert backend.config.allow_download is False
    assert VisionManager(backend=backend).generate_image("a cat", seed=1, **SMALL).data


def test_missing_model_names_every_way_to_set_it():
    from abstractvision.backends import create_backend

    backend = create_backend("diffusers", load_settings(environ={}))
    with pytest.raises(BackendNotConfiguredError) as info:
        VisionManager(backend=backend).generate_image("a cat")
    message = str(info.value)
    assert "model_id=" in message and "--model" in message and "ABSTRACTVISION_DIFFUSERS_MODEL" in message


def test_size_not_a_multiple_of_the_vae_factor_lists_the_nearest_valid_sizes(tiny_diffusers_backend):
    # the tiny VAE has two blocks: a scale factor of 2
    with pytest.raises(InvalidRequestError) as info:
        VisionManager(backend=tiny_diffusers_backend).generate_image("a cat", width=65, height=64, steps=1)
    assert info.value.field == "width"
    assert "64 or 66" in str(info.value)
    assert not tiny_diffusers_backend.loaded  # rejected before any load
