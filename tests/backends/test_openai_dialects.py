"""Server dialects on the loopback server: how each carries the portable controls and edits, and how auto picks one."""

from __future__ import annotations

import base64
import json
import re

import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import BackendNotConfiguredError, InvalidRequestError
from fixtures.images import make_png
from fixtures.openai_server import Reply, server_png

CONTROLS = {"seed": 9, "steps": 3, "guidance_scale": 6.5, "negative_prompt": "fog", "width": 64, "height": 64}
BLOCK = re.compile(r"^(.*) <sd_cpp_extra_args>(.*)</sd_cpp_extra_args>$")


def manager_for(server, model_id="sd-local", **options):
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, model_id=model_id, **options)
    return server.track(VisionManager(backend=OpenAICompatibleVisionBackend(config=config)))


def extra_args(prompt: str) -> tuple[str, dict]:
    match = BLOCK.match(prompt)
    assert match, prompt
    return match.group(1), json.loads(match.group(2))


def test_sdcpp_puts_the_controls_in_one_extra_args_line(openai_server):
    manager = manager_for(openai_server, dialect="sdcpp")
    asset = manager.generate_image("a lighthouse", **CONTROLS, extra={"sampler": "euler", "scheduler": "karras"})
    sent = openai_server.last.json
    assert set(sent) == {"prompt", "model", "size", "response_format"} and sent["size"] == "64x64"
    text, block = extra_args(sent["prompt"])
    assert text == "a lighthouse" and "\n" not in sent["prompt"]
    assert block == {
        "seed": 9,
        "steps": 3,
        "cfg_scale": 6.5,
        "negative_prompt": "fog",
        "sample_method": "euler",
        "scheduler": "karras",
    }
    assert asset.metadata["dialect"] == "sdcpp" and asset.metadata["seed"] == 9
    assert asset.metadata["prompt"] == "a lighthouse" and "ignored_params" not in asset.metadata


def test_auto_picks_sdcpp_from_the_model_list_once(openai_server):
    openai_server.models = [{"id": "sd-cpp-local", "object": "model", "owned_by": "local"}]
    manager = manager_for(openai_server, model_id=None)
    for seed in (1, 2):
        assert manager.generate_image("a cat", seed=seed).metadata["dialect"] == "sdcpp"
    probes = [r.path for r in openai_server.requests if r.method == "GET"]
    assert probes == ["/v1/models", "/sdcpp/v1/capabilities", "/sdapi/v1/options"]  # once, not per call
    assert extra_args(openai_server.last.json["prompt"])[1] == {"seed": 2}


def test_sdcpp_edits_without_the_a1111_api_send_image_array(openai_server):
    manager = manager_for(openai_server, dialect="sdcpp")
    manager.edit_image("blue", make_png(16, 16), mask=make_png(16, 16, mode="L"), seed=4)
    edit = openai_server.requests_to("/images/edits")[0]
    assert list(edit.files) == ["image[]", "mask"]
    assert extra_args(edit.form["prompt"][0])[1] == {"seed": 4}


def test_sdcpp_edits_go_to_img2img_when_the_server_has_it(openai_server):
    b64 = base64.b64encode(server_png(16, 16)).decode()
    openai_server.enqueue("/sdapi/v1/options", Reply(json={"samples_format": "png"}))
    openai_server.enqueue("/sdapi/v1/img2img", Reply(json={"images": [b64], "parameters": {}, "info": ""}))
    manager = manager_for(openai_server, dialect="sdcpp")
    image, mask = make_png(16, 16), make_png(16, 16, mode="L")
    asset = manager.edit_image("blue", image, mask=mask, seed=4, steps=2, extra={"strength": 0.4, "sampler": "euler"})
    body = openai_server.requests_to("/sdapi/v1/img2img")[0].json
    assert body == {
        "prompt": "blue",
        "seed": 4,
        "steps": 2,
        "denoising_strength": 0.4,
        "sampler_name": "euler",
        "init_images": [base64.b64encode(image).decode()],
        "mask": base64.b64encode(mask).decode(),
        "width": 16,
        "height": 16,
    }
    assert asset.metadata["endpoint"] == "/sdapi/v1/img2img" and asset.metadata["dialect"] == "sdcpp"
    assert openai_server.requests_to("/images/edits") == []


def test_localai_takes_step_and_the_negative_prompt_after_a_bar(openai_server):
    asset = manager_for(openai_server, dialect="localai").generate_image("a cat", **CONTROLS)
    sent = openai_server.last.json
    assert sent["prompt"] == "a cat|fog" and sent["step"] == 3 and sent["seed"] == 9
    assert not {"steps", "negative_prompt", "guidance_scale", "width", "height"} & set(sent)
    assert asset.metadata["ignored_params"] == ["guidance_scale"] and asset.metadata["dialect"] == "localai"


def test_auto_picks_localai_from_its_version_endpoint(openai_server):
    openai_server.enqueue("/version", Reply(json={"version": "v2.29.0"}))
    asset = manager_for(openai_server).generate_image("a cat", steps=4)
    assert asset.metadata["dialect"] == "localai" and openai_server.last.json["step"] == 4


def test_auto_picks_abstractvision_from_its_models_owner(openai_server):
    openai_server.models = [{"id": "slow-1", "object": "model", "owned_by": "abstractvision:slow", "tasks": []}]
    manager = manager_for(openai_server, model_id="slow-1")
    asset = manager.generate_image("a cat", **CONTROLS, extra={"sampler": "euler"})
    assert [r.path for r in openai_server.requests if r.method == "GET"] == ["/v1/models"]  # no /version probe
    assert openai_server.last.json == {
        "prompt": "a cat",
        "model": "slow-1",
        "seed": 9,
        "steps": 3,
        "guidance_scale": 6.5,
        "negative_prompt": "fog",
        "size": "64x64",
        "response_format": "b64_json",
        "sampler": "euler",
    }
    assert asset.metadata["dialect"] == "abstractvision" and "ignored_params" not in asset.metadata


def test_auto_on_an_unknown_server_is_generic(openai_server):
    asset = manager_for(openai_server).generate_image("a cat", **CONTROLS)
    assert asset.metadata["dialect"] == "generic"
    assert {k: openai_server.last.json[k] for k in CONTROLS} == CONTROLS


@pytest.mark.parametrize("name", ["vllm-omni", "sglang"])
def test_diffusers_servers_take_num_inference_steps(openai_server, name):
    asset = manager_for(openai_server, dialect=name).generate_image("a cat", **CONTROLS)
    sent = openai_server.last.json
    assert sent["num_inference_steps"] == 3 and sent["guidance_scale"] == 6.5
    assert sent["seed"] == 9 and sent["negative_prompt"] == "fog" and sent["size"] == "64x64"
    assert "steps" not in sent and "width" not in sent and asset.metadata["dialect"] == name


def test_openai_dialect_drops_controls_on_any_model(openai_server):
    asset = manager_for(openai_server, dialect="openai").generate_image("a cat", seed=1, width=64, height=64)
    assert openai_server.last.json == {
        "prompt": "a cat",
        "model": "sd-local",
        "size": "64x64",
        "response_format": "b64_json",
    }
    assert asset.metadata["ignored_params"] == ["seed"]


def test_strict_params_refuses_what_the_dialect_cannot_carry(openai_server):
    with pytest.raises(InvalidRequestError) as info:
        manager_for(openai_server, dialect="localai", strict_params=True).generate_image("a cat", guidance_scale=3.0)
    assert info.value.field == "guidance_scale" and "localai" in str(info.value)
    assert openai_server.requests_to("/images/generations") == []


def test_an_unknown_dialect_is_a_configuration_error():
    with pytest.raises(BackendNotConfiguredError, match="auto, generic, openai, sdcpp"):
        OpenAICompatibleBackendConfig(base_url="http://127.0.0.1:9/v1", dialect="comfy")


def test_img2img_takes_an_explicit_size_over_the_inputs(openai_server):
    b64 = base64.b64encode(server_png(64, 64)).decode()
    openai_server.enqueue("/sdapi/v1/options", Reply(json={"samples_format": "png"}))
    openai_server.enqueue("/sdapi/v1/img2img", Reply(json={"images": [b64]}))
    manager_for(openai_server, dialect="sdcpp").edit_image("blue", make_png(16, 16), extra={"size": "64x64"})
    body = openai_server.requests_to("/sdapi/v1/img2img")[0].json
    assert (body["width"], body["height"], body["steps"]) == (64, 64, 20) and "size" not in body
