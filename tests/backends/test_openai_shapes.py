"""OpenAI's narrow per-model request shapes vs the local shape, checked on the wire (loopback server)."""

from __future__ import annotations

import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import CapabilityNotSupportedError, InvalidRequestError
from fixtures.images import make_jpeg, make_png


def manager_for(server, model_id, **options):
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, model_id=model_id, **options)
    return server.track(VisionManager(backend=OpenAICompatibleVisionBackend(config=config)))


def test_gpt_image_gets_the_narrow_shape_without_response_format(openai_server):
    manager = manager_for(openai_server, "gpt-image-1")
    asset = manager.generate_image(
        "a lighthouse",
        width=1536,
        height=1024,
        extra={"quality": "high", "background": "transparent", "output_format": "png", "output_compression": 80},
    )
    assert openai_server.last.json == {
        "prompt": "a lighthouse",
        "model": "gpt-image-1",
        "size": "1536x1024",
        "quality": "high",
        "background": "transparent",
        "output_format": "png",
        "output_compression": 80,
    }
    assert asset.metadata["usage"] == {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}
    assert asset.metadata["quality"] == "high" and asset.metadata["size"] == "1536x1024"
    assert "seed" not in asset.metadata


def test_dall_e_3_keeps_revised_prompt_and_asks_for_b64(openai_server):
    manager = manager_for(openai_server, "dall-e-3")
    asset = manager.generate_image("a cat", extra={"style": "natural", "quality": "hd", "size": "1792x1024"})
    assert openai_server.last.json == {
        "prompt": "a cat",
        "model": "dall-e-3",
        "response_format": "b64_json",
        "style": "natural",
        "quality": "hd",
        "size": "1792x1024",
    }
    assert asset.metadata["revised_prompt"] == "revised: a cat"


@pytest.mark.parametrize(
    ("model", "params", "field", "listed"),
    [
        ("gpt-image-1", {"extra": {"quality": "hd"}}, "quality", "low, medium, high, auto"),
        ("gpt-image-1", {"extra": {"quality": "ultra"}}, "quality", "low, medium, high, auto"),
        ("gpt-image-1", {"extra": {"size": "1000x1000"}}, "size", "1024x1536"),
        ("gpt-image-1", {"extra": {"response_format": "url"}}, "response_format", "background"),
        ("gpt-image-1", {"extra": {"output_compression": 101}}, "output_compression", "0..100"),
        ("dall-e-3", {"extra": {"size": "512x512"}}, "size", "1792x1024"),
        ("dall-e-3", {"extra": {"background": "transparent"}}, "background", "style"),
        ("dall-e-3", {"extra": {"style": "anime"}}, "style", "vivid, natural"),
        ("sd-local", {"extra": {"n": 2}}, "n", "count=N"),
    ],
)
def test_values_the_provider_rejects_fail_before_sending(openai_server, model, params, field, listed):
    manager = manager_for(openai_server, model)
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image("a cat", **params)
    assert info.value.field == field
    assert listed in str(info.value)
    assert openai_server.requests == []


@pytest.mark.parametrize(
    ("model", "params", "field", "listed"),
    [
        ("gpt-image-1", {"width": 1000, "height": 1000}, "width", "1024x1536"),
        ("gpt-image-1", {"seed": 3}, "seed", "quality"),
        ("gpt-image-1", {"steps": 3}, "steps", "quality"),
        ("gpt-image-1", {"negative_prompt": "x"}, "negative_prompt", "quality"),
        ("gpt-image-1", {"guidance_scale": 5.0}, "guidance_scale", "quality"),
        ("dall-e-2", {"width": 1792, "height": 1024}, "width", "256x256, 512x512, 1024x1024"),
    ],
)
def test_strict_params_refuses_portable_controls_before_sending(openai_server, model, params, field, listed):
    manager = manager_for(openai_server, model, strict_params=True)
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image("a cat", **params)
    assert info.value.field == field
    assert listed in str(info.value)
    assert openai_server.requests == []


def test_openai_host_without_model_gets_dall_e_2_rules(block_network):
    backend = OpenAICompatibleVisionBackend(
        config=OpenAICompatibleBackendConfig(base_url="https://api.openai.com/v1", api_key="sk-x", strict_params=True)
    )
    with pytest.raises(InvalidRequestError) as info:
        VisionManager(backend=backend).generate_image("a cat", seed=1)
    assert info.value.field == "seed"
    assert block_network == []  # refused before any connection


def test_gpt_image_edit_uses_image_array_with_several_references(openai_server):
    manager = manager_for(openai_server, "gpt-image-1")
    manager.edit_image(
        "combine",
        make_png(16, 16),
        mask=make_png(16, 16, mode="L"),
        extra={"reference_images": [make_jpeg(8, 8), make_png(8, 8)], "input_fidelity": "high", "quality": "low"},
    )
    request = openai_server.last
    assert request.form == {
        "prompt": ["combine"],
        "model": ["gpt-image-1"],
        "input_fidelity": ["high"],
        "quality": ["low"],
    }
    parts = [(f.filename, f.content_type) for f in request.files["image[]"]]
    assert parts == [("image.png", "image/png"), ("reference-1.jpg", "image/jpeg"), ("reference-2.png", "image/png")]
    assert request.files["mask"][0].filename == "mask.png"


def test_dall_e_2_edit_takes_one_image_field(openai_server):
    manager = manager_for(openai_server, "dall-e-2")
    manager.edit_image("edit", make_png(16, 16), extra={"size": "256x256"})
    assert list(openai_server.last.files) == ["image"]
    assert openai_server.last.form["size"] == ["256x256"]
    with pytest.raises(InvalidRequestError) as info:
        manager.edit_image("edit", make_png(16, 16), extra={"reference_images": [make_png(8, 8)]})
    assert info.value.field == "reference_images"


def test_dall_e_3_cannot_edit(openai_server):
    manager = manager_for(openai_server, "dall-e-3")
    assert "image_to_image" not in manager.backend.get_capabilities().supported_tasks
    with pytest.raises(CapabilityNotSupportedError):
        manager.edit_image("edit", make_png(16, 16))
    assert openai_server.requests == []
