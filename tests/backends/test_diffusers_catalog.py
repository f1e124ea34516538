"""The local-cache catalog, on a hub cache folder laid out the way huggingface_hub writes it."""

from __future__ import annotations

import json

import pytest

from abstractvision.backends.huggingface_diffusers import (
    HuggingFaceDiffusersBackendConfig,
    HuggingFaceDiffusersVisionBackend,
)


def cache_repo(root, repo_id: str, model_index: dict | None, *, ref: bool = True) -> None:
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    if model_index is not None:
        (snapshot / "model_index.json").write_text(json.dumps(model_index))
    else:
        (snapshot / "config.json").write_text("{}")  # a transformers model, not a pipeline
    if ref:
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0123abcd")


@pytest.fixture
def hub_cache(tmp_path, tiny_diffusers_pipeline):
    root = tmp_path / "hub"
    real_index = json.loads((tiny_diffusers_pipeline / "model_index.json").read_text())
    cache_repo(root, "runwayml/stable-diffusion-v1-5", real_index)
    cache_repo(root, "someone/sd-inpainting", {"_class_name": "StableDiffusionInpaintPipeline"}, ref=False)
    cache_repo(root, "someone/pixart", {"_class_name": "PixArtSigmaPipeline"})
    cache_repo(root, "someone/video", {"_class_name": "WanPipeline"})
    cache_repo(root, "openai/clip-vit", None)
    (root / "datasets--someone--data").mkdir()
    return root


def catalog(root, task=None):
    backend = HuggingFaceDiffusersVisionBackend(config=HuggingFaceDiffusersBackendConfig(cache_dir=str(root)))
    return {m.id: m for m in backend.list_provider_models(task=task)}


def test_lists_cached_pipelines_with_their_tasks(hub_cache):
    models = catalog(hub_cache)
    assert set(models) == {"runwayml/stable-diffusion-v1-5", "someone/sd-inpainting", "someone/pixart"}
    sd = models["runwayml/stable-diffusion-v1-5"]
    assert sd.capabilities == ("text_to_image", "image_to_image")
    assert sd.raw["class_name"] == "StableDiffusionPipeline" and sd.owned_by == "runwayml"
    assert models["someone/sd-inpainting"].capabilities == ("image_to_image",)


def test_filters_by_task(hub_cache):
    assert set(catalog(hub_cache, "text_to_image")) == {"runwayml/stable-diffusion-v1-5", "someone/pixart"}
    assert set(catalog(hub_cache, "image_to_image")) == {"runwayml/stable-diffusion-v1-5", "someone/sd-inpainting"}
    assert catalog(hub_cache, "text_to_video") == {}


def test_an_empty_or_missing_cache_lists_nothing(tmp_path):
    assert catalog(tmp_path / "nothing-here") == {}


@pytest.mark.slow
def test_a_cached_repo_id_loads_with_the_network_blocked(hub_cache, tiny_diffusers_pipeline, block_network):
    import shutil

    snapshot = hub_cache / "models--someone--tiny" / "snapshots" / "feed"
    shutil.copytree(tiny_diffusers_pipeline, snapshot)
    (hub_cache / "models--someone--tiny" / "refs").mkdir()
    (hub_cache / "models--someone--tiny" / "refs" / "main").write_text("feed")
    config = HuggingFaceDiffusersBackendConfig(model_id="someone/tiny", cache_dir=str(hub_cache), device="cpu")
    from abstractvision import VisionManager

    with HuggingFaceDiffusersVisionBackend(config=config) as backend:
        asset = VisionManager(backend=backend).generate_image("a cat", seed=1, width=64, height=64, steps=1)
    assert asset.metadata["model"] == "someone/tiny"
    assert block_network == []


def test_upscale_pipelines_are_listed_for_image_upscale_only(tmp_path):
    """A cached upscaler is what ``upscaler=`` takes: listed for image_upscale, never as a generation model."""
    root = tmp_path / "hub"
    cache_repo(root, "stabilityai/stable-diffusion-x4-upscaler", {"_class_name": "StableDiffusionUpscalePipeline"})
    cache_repo(root, "runwayml/stable-diffusion-v1-5", {"_class_name": "StableDiffusionPipeline"})
    assert set(catalog(root, "image_upscale")) == {"stabilityai/stable-diffusion-x4-upscaler"}
    assert set(catalog(root, "text_to_image")) == {"runwayml/stable-diffusion-v1-5"}
    assert catalog(root)["stabilityai/stable-diffusion-x4-upscaler"].capabilities == ("image_upscale",)
