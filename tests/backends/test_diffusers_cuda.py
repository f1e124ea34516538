"""The Diffusers backend on a CUDA GPU: auto device/dtype, pixel parity, offload, memory release.

These run only where CUDA is available (a lent GPU machine: `pytest -m gpu`); elsewhere they skip.
They use the same tiny random-weight pipeline as the CPU tests.
"""

from __future__ import annotations

import io

import pytest

from abstractvision import VisionManager
from abstractvision.backends.huggingface_diffusers import (
    HuggingFaceDiffusersBackendConfig,
    HuggingFaceDiffusersVisionBackend,
)
from fixtures.tiny_diffusers import overflowing_copy

pytestmark = [pytest.mark.slow, pytest.mark.gpu]
numpy = pytest.importorskip("numpy", reason='needs pip install "abstractvision[diffusers]"')

SMALL = {"width": 64, "height": 64, "steps": 4}


@pytest.fixture
def cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch


def pixels(png: bytes) -> numpy.ndarray:
    from PIL import Image

    return numpy.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_auto_picks_cuda_and_half_precision(cuda, tiny_diffusers_pipeline):
    config = HuggingFaceDiffusersBackendConfig(model_id=str(tiny_diffusers_pipeline), cpu_offload="none")
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        asset = VisionManager(backend=backend).generate_image("a cat", seed=3, **SMALL)
    assert asset.metadata["device"].startswith("cuda")
    assert asset.metadata["torch_dtype"] == "float16"
    assert pixels(asset.data).std() > 0


def test_cuda_result_matches_a_raw_pipeline_call(cuda, tiny_diffusers_pipeline):
    from diffusers import AutoPipelineForText2Image

    config = HuggingFaceDiffusersBackendConfig(
        model_id=str(tiny_diffusers_pipeline), device="cuda", torch_dtype="float16", cpu_offload="none"
    )
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        asset = VisionManager(backend=backend).generate_image("a red cat", seed=42, **SMALL)
    pipe = AutoPipelineForText2Image.from_pretrained(
        str(tiny_diffusers_pipeline), local_files_only=True, torch_dtype=cuda.float16
    ).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    raw = pipe(
        prompt="a red cat",
        width=64,
        height=64,
        num_inference_steps=4,
        generator=cuda.Generator("cuda").manual_seed(42),
    ).images[0]
    assert numpy.array_equal(pixels(asset.data), numpy.asarray(raw.convert("RGB")))


@pytest.mark.parametrize("offload", ["model", "sequential"])
def test_cpu_offload_modes_run(cuda, tiny_diffusers_pipeline, offload, png_bytes):
    config = HuggingFaceDiffusersBackendConfig(model_id=str(tiny_diffusers_pipeline), cpu_offload=offload)
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        manager = VisionManager(backend=backend)
        first = manager.generate_image("a cat", seed=9, **SMALL)
        edited = manager.edit_image("a dog", png_bytes, seed=9, steps=4, strength=0.5)
    assert first.metadata["device"].startswith("cuda") and edited.metadata["task"] == "image_to_image"


def test_unload_returns_gpu_memory(cuda, tiny_diffusers_pipeline):
    cuda.cuda.synchronize()
    before = cuda.cuda.memory_allocated()
    config = HuggingFaceDiffusersBackendConfig(model_id=str(tiny_diffusers_pipeline), device="cuda", cpu_offload="none")
    backend = HuggingFaceDiffusersVisionBackend(config=config)
    VisionManager(backend=backend).generate_image("a cat", seed=1, **SMALL)
    loaded = cuda.cuda.memory_allocated()
    assert loaded > before
    backend.unload()
    cuda.cuda.synchronize()
    after = cuda.cuda.memory_allocated()
    assert after - before <= 0.1 * (loaded - before)


def test_a_nan_float16_result_on_cuda_is_retried_in_float32(cuda, tiny_diffusers_pipeline, tmp_path):
    import warnings

    folder = overflowing_copy(tiny_diffusers_pipeline, tmp_path / "overflow")
    config = HuggingFaceDiffusersBackendConfig(model_id=str(folder), device="cuda", cpu_offload="none")
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asset = VisionManager(backend=backend).generate_image("a cat", seed=1, **SMALL)
    assert any("retrying in float32" in str(w.message) for w in caught)
    assert asset.metadata["fp32_retry"] is True and asset.metadata["torch_dtype"] == "float32"
    assert asset.metadata["device"].startswith("cuda") and pixels(asset.data).max() > 0


def test_lora_on_cuda_matches_raw_diffusers_and_leaves_no_trace(cuda, tiny_diffusers_pipeline, tiny_loras):
    from diffusers import StableDiffusionPipeline

    config = HuggingFaceDiffusersBackendConfig(
        model_id=str(tiny_diffusers_pipeline),
        device="cuda",
        torch_dtype="float16",
        cpu_offload="none",
        lora_dir=str(tiny_loras),
    )
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        manager = VisionManager(backend=backend)
        plain = pixels(manager.generate_image("a red cat", seed=42, **SMALL).data)
        styled = pixels(manager.generate_image("a red cat", seed=42, lora_adapters=["a:0.7"], **SMALL).data)
        again = pixels(manager.generate_image("a red cat", seed=42, **SMALL).data)
    pipe = StableDiffusionPipeline.from_pretrained(
        str(tiny_diffusers_pipeline), local_files_only=True, torch_dtype=cuda.float16
    ).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(tiny_loras), weight_name="a.safetensors", adapter_name="a")
    pipe.set_adapters(["a"], adapter_weights=[0.7])
    raw = pipe(
        prompt="a red cat", width=64, height=64, num_inference_steps=4, generator=cuda.Generator("cuda").manual_seed(42)
    ).images[0]
    assert numpy.array_equal(styled, numpy.asarray(raw.convert("RGB")))
    assert numpy.array_equal(again, plain) and not numpy.array_equal(styled, plain)


def test_lora_with_model_offload_leaves_no_trace(cuda, tiny_diffusers_pipeline, tiny_loras, png_bytes):
    config = HuggingFaceDiffusersBackendConfig(
        model_id=str(tiny_diffusers_pipeline), cpu_offload="model", lora_dir=str(tiny_loras)
    )
    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        manager = VisionManager(backend=backend)
        plain = pixels(manager.generate_image("a cat", seed=9, **SMALL).data)
        styled = pixels(manager.generate_image("a cat", seed=9, lora_adapters=["a", "b:0.5"], **SMALL).data)
        edited = manager.edit_image("a dog", png_bytes, seed=9, steps=4, strength=0.5, lora_adapters=["b"])
        again = pixels(manager.generate_image("a cat", seed=9, **SMALL).data)
    assert numpy.array_equal(again, plain) and not numpy.array_equal(styled, plain)
    assert edited.metadata["lora_adapters"] == [{"source": "b", "scale": 1.0}]
