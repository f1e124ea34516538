"""Single-file checkpoints in the Diffusers backend: cache-only, config resolved locally.

Uses the full-size random SD 1.x checkpoint the stable-diffusion.cpp tests build (2.1 GB, cached).
"""

from __future__ import annotations

import pytest

from abstractvision import VisionManager
from abstractvision.backends.huggingface_diffusers import (
    HuggingFaceDiffusersBackendConfig,
    HuggingFaceDiffusersVisionBackend,
)
from abstractvision.errors import ModelNotAvailableError
from fixtures.sd15_checkpoint import write_sd15_diffusers_config

pytestmark = pytest.mark.slow

BASE_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"


def fake_hub_cache(root):
    """A Hugging Face cache holding only the base model's config files, as `hf download --include
    '*.json' '*.txt'` leaves it."""
    repo = root / ("models--" + BASE_REPO.replace("/", "--"))
    write_sd15_diffusers_config(repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    return root


def backend_for(checkpoint, **options):
    config = HuggingFaceDiffusersBackendConfig(model_id=str(checkpoint), device="cpu", **options)
    return HuggingFaceDiffusersVisionBackend(config=config)


def test_without_the_base_config_it_says_how_to_get_it_and_opens_no_connection(
    sd15_checkpoint, tmp_path, block_network
):
    with backend_for(sd15_checkpoint, cache_dir=str(tmp_path / "empty-cache")) as backend:
        with pytest.raises(ModelNotAvailableError) as info:
            VisionManager(backend=backend).generate_image("a cat", width=64, height=64, steps=1)
    message = str(info.value)
    assert BASE_REPO in message and f"hf download {BASE_REPO} --include" in message
    assert "single_file_config=" in message and "--allow-download" in message
    assert block_network == []


def test_a_missing_explicit_config_is_named(sd15_checkpoint, tmp_path, block_network):
    with backend_for(sd15_checkpoint, single_file_config=str(tmp_path / "nowhere")) as backend:
        with pytest.raises(ModelNotAvailableError, match="nowhere"):
            backend.preload()
    assert block_network == []


def test_loads_from_the_cached_base_config_with_no_network(sd15_checkpoint, tmp_path, block_network):
    cache = fake_hub_cache(tmp_path / "hub")
    with backend_for(sd15_checkpoint, cache_dir=str(cache)) as backend:
        asset = VisionManager(backend=backend).generate_image("a cat", seed=3, width=64, height=64, steps=1)
    assert asset.mime_type == "image/png" and asset.metadata["seed"] == 3
    assert asset.metadata["model"] == str(sd15_checkpoint)
    assert block_network == []
