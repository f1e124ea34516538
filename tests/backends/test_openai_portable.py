"""Portable generation controls: one call runs on OpenAI's narrow shapes (dropped, listed) and local servers (sent)."""

from __future__ import annotations

import logging

import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import InvalidRequestError

#: One request, written once, for every engine.
PORTABLE = {"seed": 9, "steps": 30, "guidance_scale": 6.5, "negative_prompt": "fog", "width": 1024, "height": 1024}


def manager_for(server, model_id, **options):
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, model_id=model_id, **options)
    return server.track(VisionManager(backend=OpenAICompatibleVisionBackend(config=config)))


def test_gpt_image_drops_the_portable_controls_and_says_so(openai_server):
    asset = manager_for(openai_server, "gpt-image-1").generate_image("a lighthouse", **PORTABLE)
    assert openai_server.last.json == {"prompt": "a lighthouse", "model": "gpt-image-1", "size": "1024x1024"}
    assert asset.metadata["ignored_params"] == ["guidance_scale", "negative_prompt", "seed", "steps"]
    assert "seed" not in asset.metadata and asset.metadata["size"] == "1024x1024"


def test_gpt_image_with_strict_params_refuses_before_sending(openai_server):
    with pytest.raises(InvalidRequestError) as info:
        manager_for(openai_server, "gpt-image-1", strict_params=True).generate_image("a lighthouse", **PORTABLE)
    assert info.value.field in {"seed", "steps", "guidance_scale", "negative_prompt"}
    assert "gpt-image-1" in str(info.value)
    assert openai_server.requests == []


def test_a_generic_local_server_gets_the_controls(openai_server):
    asset = manager_for(openai_server, "sd-local").generate_image("a lighthouse", **PORTABLE)
    sent = openai_server.last.json
    assert {k: sent[k] for k in PORTABLE} == PORTABLE
    assert sent["size"] == "1024x1024"
    assert "ignored_params" not in asset.metadata and asset.metadata["seed"] == 9


def test_width_and_height_map_to_the_nearest_published_size(openai_server):
    manager = manager_for(openai_server, "gpt-image-1")
    asset = manager.generate_image("wide", width=1600, height=900)
    assert openai_server.last.json["size"] == "1536x1024"
    assert asset.metadata["size"] == "1536x1024" and asset.metadata["requested_size"] == "1600x900"
    manager_for(openai_server, "dall-e-2").generate_image("square", width=300, height=300)
    assert openai_server.last.json["size"] == "256x256"


def test_one_warning_per_backend_and_field_not_per_call(openai_server, caplog):
    manager = manager_for(openai_server, "gpt-image-1")
    with caplog.at_level(logging.WARNING, logger="abstractvision"):
        for _ in range(3):
            manager.generate_image("a cat", seed=1, steps=2)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("abstractvision")]
    assert len(lines) == 2 and any("seed" in line for line in lines) and any("steps" in line for line in lines)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="abstractvision"):
        manager_for(openai_server, "gpt-image-1").generate_image("a cat", seed=1)
    assert len([r for r in caplog.records if r.name.startswith("abstractvision")]) == 1  # a new backend warns again


@pytest.mark.parametrize(
    ("extra", "field", "listed"),
    [
        ({"quality": "ultra"}, "quality", "low, medium, high, auto"),
        ({"size": "1000x1000"}, "size", "1024x1024, 1536x1024, 1024x1536"),
    ],
)
def test_an_explicit_provider_parameter_it_rejects_still_fails(openai_server, extra, field, listed):
    with pytest.raises(InvalidRequestError) as info:
        manager_for(openai_server, "gpt-image-1").generate_image("a cat", seed=1, extra=extra)
    assert info.value.field == field and listed in str(info.value)
    assert openai_server.requests == []
