"""The Diffusers backend against a real tiny random-weight pipeline built by the tests."""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import warnings
import weakref

import pytest

from abstractvision import VisionManager
from abstractvision.backends.huggingface_diffusers import (
    HuggingFaceDiffusersBackendConfig,
    HuggingFaceDiffusersVisionBackend,
)
from abstractvision.errors import (
    BackendNotConfiguredError,
    EngineError,
    GenerationCancelledError,
    InvalidRequestError,
    ModelNotAvailableError,
)
from abstractvision.media import read_png_metadata
from fixtures.images import make_png
from fixtures.tiny_diffusers import overflowing_copy

pytestmark = pytest.mark.slow
numpy = pytest.importorskip("numpy", reason='needs pip install "abstractvision[diffusers]"')

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


def test_create_backend_reads_the_environment_under_explicit_values(tiny_diffusers_pipeline):
    from abstractvision.backends import create_backend

    environ = {"ABSTRACTVISION_DIFFUSERS_MODEL": str(tiny_diffusers_pipeline), "ABSTRACTVISION_DIFFUSERS_DEVICE": "cpu"}
    backend = create_backend("diffusers", environ, torch_dtype="float32", allow_download=None)
    assert backend.config.model_id == str(tiny_diffusers_pipeline)
    assert backend.config.device == "cpu" and backend.config.torch_dtype == "float32"
    assert backend.config.allow_download is False
    assert VisionManager(backend=backend).generate_image("a cat", seed=1, **SMALL).data


def test_missing_model_names_every_way_to_set_it():
    from abstractvision.backends import create_backend

    backend = create_backend("diffusers", environ={})
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


def test_image_to_image_and_inpainting_share_the_loaded_weights(tiny_diffusers_backend, png_bytes):
    manager = VisionManager(backend=tiny_diffusers_backend)
    t2i = manager.generate_image("a cat", seed=3, **SMALL)
    edited = manager.edit_image("a dog", t2i.data, seed=3, steps=4, strength=0.5)
    inpainted = manager.edit_image("a dog", t2i.data, mask=make_png(mode="L"), seed=3, steps=2)
    assert pixels(edited.data).shape == pixels(inpainted.data).shape == (64, 64, 3)
    assert edited.metadata["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert edited.metadata["strength"] == 0.5 and edited.metadata["task"] == "image_to_image"
    assert inpainted.metadata["pipeline"] == "StableDiffusionInpaintPipeline"
    pipes = tiny_diffusers_backend._pipelines
    assert pipes["image_to_image"].unet is pipes["text_to_image"].unet is pipes["inpaint"].unet
    assert pipes["inpaint"].vae is pipes["text_to_image"].vae


@pytest.mark.timeout(120)
def test_an_edit_decodes_its_input_once_to_check_it_and_once_for_the_pipeline(tiny_diffusers_backend, pil_decodes):
    image, mask = make_png(64, 64, color=(10, 200, 30)), make_png(64, 64, mode="L")
    VisionManager(backend=tiny_diffusers_backend).edit_image("a dog", image, mask=mask, seed=3, steps=2)
    # one decode each while the manager validates, and one each into the pixels the pipeline takes
    assert (pil_decodes.count(image), pil_decodes.count(mask)) == (2, 2)


@pytest.mark.timeout(120)
def test_the_largest_seed_runs_and_is_recorded_and_one_more_is_refused(tiny_diffusers_backend):
    manager = VisionManager(backend=tiny_diffusers_backend)
    top = tiny_diffusers_backend.get_capabilities().max_seed
    assert manager.generate_image("a cat", seed=top, **SMALL).metadata["seed"] == top
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image("a cat", seed=top + 1, **SMALL)
    assert info.value.field == "seed" and f"0..{top}" in str(info.value)


def test_why_seeds_stop_at_32_bits_torch_cpu_generator_wraps_a_larger_one():
    """The engine fact behind the Diffusers max_seed: torch's CPU generator keeps a seed's low 32 bits."""
    import torch

    low, high = torch.Generator("cpu").manual_seed(7), torch.Generator("cpu").manual_seed(7 + 2**32)
    assert torch.equal(torch.randn(8, generator=low), torch.randn(8, generator=high))


def test_image_to_image_is_reproducible_for_a_seed(tiny_diffusers_backend, png_bytes):
    manager = VisionManager(backend=tiny_diffusers_backend)
    first = manager.edit_image("a dog", png_bytes, seed=9, steps=2, strength=1.0)
    second = manager.edit_image("a dog", png_bytes, seed=9, steps=2, strength=1.0)
    other = manager.edit_image("a dog", png_bytes, seed=10, steps=2, strength=1.0)
    assert numpy.array_equal(pixels(first.data), pixels(second.data))
    assert not numpy.array_equal(pixels(first.data), pixels(other.data))


def test_progress_reports_every_denoising_step(tiny_diffusers_backend, png_bytes):
    manager = VisionManager(backend=tiny_diffusers_backend)
    events = []
    manager.generate_image("a cat", on_progress=events.append, width=64, height=64, steps=3)
    steps = [(e.step, e.total_steps) for e in events if e.phase == "step"]
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert events[0].phase == "start" and events[-1].phase == "end" and events[-1].step == 3
    events.clear()
    manager.edit_image("a dog", png_bytes, on_progress=events.append, steps=4, strength=0.5)
    assert [(e.step, e.total_steps) for e in events if e.phase == "step"] == [(1, 2), (2, 2)]


def test_cancel_stops_the_denoising_loop(tiny_diffusers_backend):
    manager = VisionManager(backend=tiny_diffusers_backend)
    tiny_diffusers_backend.preload()
    unet_calls = []
    unet = tiny_diffusers_backend._pipelines["text_to_image"].unet
    handle = unet.register_forward_hook(lambda *args: unet_calls.append(1))
    cancel = threading.Event()

    def on_progress(event):
        if event.phase == "step" and event.step == 2:
            cancel.set()

    try:
        with pytest.raises(GenerationCancelledError):
            manager.generate_image("a cat", on_progress=on_progress, cancel=cancel, width=64, height=64, steps=20)
    finally:
        handle.remove()
    assert len(unet_calls) == 2  # classifier-free guidance batches both halves into one UNet call
    cancel.clear()
    assert manager.generate_image("a cat", **SMALL).data  # the pipeline is usable after a cancel


def test_cache_only_refuses_an_uncached_repo_without_touching_the_network(block_network, tmp_path):
    backend = HuggingFaceDiffusersVisionBackend(
        config=HuggingFaceDiffusersBackendConfig(model_id="someorg/not-cached-model", cache_dir=str(tmp_path))
    )
    with pytest.raises(ModelNotAvailableError) as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    message = str(info.value)
    assert "someorg/not-cached-model" in message
    assert "hf download someorg/not-cached-model" in message
    assert "allow_download=True" in message and "ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD=1" in message
    assert info.value.model == "someorg/not-cached-model"
    assert block_network == []  # nothing was even attempted
    assert "HF_HUB_OFFLINE" not in os.environ


def test_a_missing_local_path_is_reported_by_name(tmp_path):
    missing = tmp_path / "nowhere" / "model.safetensors"
    backend = HuggingFaceDiffusersVisionBackend(config=HuggingFaceDiffusersBackendConfig(model_id=str(missing)))
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        backend.preload()


def test_unload_releases_the_pipeline_and_the_next_call_reloads(tiny_diffusers_backend):
    tiny_diffusers_backend.preload()
    assert tiny_diffusers_backend.loaded
    unet = weakref.ref(tiny_diffusers_backend._pipelines["text_to_image"].unet)
    tiny_diffusers_backend.unload()
    assert not tiny_diffusers_backend.loaded
    assert unet() is None  # no reference survives the unload
    tiny_diffusers_backend.unload()  # idempotent
    asset = VisionManager(backend=tiny_diffusers_backend).generate_image("a cat", seed=5, **SMALL)
    assert asset.metadata["seed"] == 5 and tiny_diffusers_backend.loaded


def test_four_threads_share_one_backend(tiny_diffusers_backend):
    manager = VisionManager(backend=tiny_diffusers_backend)
    seeds = [11, 12, 13, 14]
    expected = {seed: pixels(manager.generate_image("a cat", seed=seed, **SMALL).data) for seed in seeds}
    tiny_diffusers_backend.unload()  # the four threads race to load it too
    results: dict[int, numpy.ndarray] = {}
    errors: list[BaseException] = []

    def work(seed):
        try:
            for _ in range(2):
                results[seed] = pixels(manager.generate_image("a cat", seed=seed, **SMALL).data)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert all(numpy.array_equal(results[seed], expected[seed]) for seed in seeds)


def test_a_nan_half_precision_result_is_retried_in_float32(tiny_diffusers_pipeline, tmp_path):
    folder = overflowing_copy(tiny_diffusers_pipeline, tmp_path / "overflow")
    config = HuggingFaceDiffusersBackendConfig(model_id=str(folder), device="cpu", torch_dtype="float16")
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        with pytest.warns(RuntimeWarning, match="retrying in float32"):
            asset = VisionManager(backend=backend).generate_image("a cat", seed=1, **SMALL)
    assert asset.metadata["fp32_retry"] is True and asset.metadata["torch_dtype"] == "float32"
    assert pixels(asset.data).max() > 0
    no_retry = dataclasses.replace(config, auto_retry_fp32=False)
    with HuggingFaceDiffusersVisionBackend(config=no_retry) as backend:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's NaN cast
            plain = VisionManager(backend=backend).generate_image("a cat", seed=1, **SMALL)
    assert "fp32_retry" not in plain.metadata and plain.metadata["torch_dtype"] == "float16"
    assert pixels(plain.data).max() == 0  # the broken half-precision image, as it came


def test_unknown_extra_parameters_are_refused_by_name(tiny_diffusers_backend):
    with pytest.raises(InvalidRequestError) as info:
        VisionManager(backend=tiny_diffusers_backend).generate_image("a cat", no_such_knob=3, **SMALL)
    assert "no_such_knob" in str(info.value)


def test_extra_pipeline_arguments_are_forwarded(tiny_diffusers_backend):
    manager = VisionManager(backend=tiny_diffusers_backend)
    plain = manager.generate_image("a cat", seed=2, **SMALL)
    stochastic = manager.generate_image("a cat", seed=2, eta=1.0, **SMALL)  # DDIM eta: noise added each step
    assert not numpy.array_equal(pixels(plain.data), pixels(stochastic.data))


def test_strength_out_of_range_is_rejected_before_loading(tiny_diffusers_backend, png_bytes):
    with pytest.raises(InvalidRequestError) as info:
        VisionManager(backend=tiny_diffusers_backend).edit_image("a dog", png_bytes, strength=1.5)
    assert info.value.field == "strength" and not tiny_diffusers_backend.loaded


def test_scheduler_by_alias(tiny_diffusers_pipeline):
    config = HuggingFaceDiffusersBackendConfig(model_id=str(tiny_diffusers_pipeline), device="cpu", scheduler="euler")
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        asset = VisionManager(backend=backend).generate_image("a cat", seed=1, **SMALL)
    assert asset.metadata["scheduler"] == "EulerDiscreteScheduler"


def test_cpu_offload_without_cuda_is_a_config_error(tiny_diffusers_pipeline):
    config = HuggingFaceDiffusersBackendConfig(model_id=str(tiny_diffusers_pipeline), device="cpu", cpu_offload="model")
    with pytest.raises(BackendNotConfiguredError, match="needs a CUDA GPU"):
        HuggingFaceDiffusersVisionBackend(config=config).preload()


@pytest.mark.parametrize("device", ["nonsense:0", "cuda:x", "cuda", "cuda:7"])
def test_a_device_torch_cannot_use_is_a_config_error_naming_the_setting_before_loading(tiny_diffusers_pipeline, device):
    import torch

    if (device == "cuda" and torch.cuda.is_available()) or (device == "cuda:7" and torch.cuda.device_count() > 7):
        pytest.skip("this machine has that CUDA device")
    backend = HuggingFaceDiffusersVisionBackend(
        config=HuggingFaceDiffusersBackendConfig(model_id=str(tiny_diffusers_pipeline), device=device)
    )
    with pytest.raises(BackendNotConfiguredError, match="ABSTRACTVISION_DIFFUSERS_DEVICE") as info:
        backend.preload()
    assert repr(device) in str(info.value) and not backend.loaded


def test_a_failure_moving_the_weights_to_the_device_is_an_engine_error_naming_the_setting(tiny_diffusers_pipeline):
    import torch

    if torch.xpu.is_available():
        pytest.skip("this machine has an XPU")
    backend = HuggingFaceDiffusersVisionBackend(  # a device torch knows but was not built for: fails in .to()
        config=HuggingFaceDiffusersBackendConfig(model_id=str(tiny_diffusers_pipeline), device="xpu")
    )
    with pytest.raises(EngineError, match=r"failed moving its weights to device 'xpu' \(device= / --device / ") as info:
        VisionManager(backend=backend).generate_image("a cat", **SMALL)
    assert "XPU" in str(info.value) and not backend.loaded


def test_loading_prints_nothing_and_restores_library_settings(tiny_diffusers_pipeline, capfd):
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    config = HuggingFaceDiffusersBackendConfig(model_id=str(tiny_diffusers_pipeline), device="cpu")
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        backend.preload()
    captured = capfd.readouterr()
    assert "Loading" not in captured.err and "torchvision" not in captured.err
    assert diffusers_logging.is_progress_bar_enabled() and transformers_logging.is_progress_bar_enabled()
    assert transformers_logging.get_verbosity() == verbosity
