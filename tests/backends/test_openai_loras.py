"""LoRA adapters over HTTP, against the loopback server: sd-server's ``lora`` list, and every other dialect's refusal.

The real sd-server 0.4.5 (the adapter changes the image, like the local engine's) is in
``test_sd_server_lora.py``; here the wire shape, the listing's checks and the refusals run in milliseconds.
"""

from __future__ import annotations

import base64

import pytest

from abstractvision import VisionManager
from abstractvision.backends._openai_loras import MAX_LISTED, parse_abstractvision_listing, parse_listing
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import (
    AdapterNotAvailableError,
    CapabilityNotSupportedError,
    InvalidProviderResponseError,
    InvalidRequestError,
)
from fixtures.openai_server import Reply, server_png

LISTED = [{"name": "ink", "path": "ink.safetensors"}, {"name": "wash", "path": "styles/wash.safetensors"}]
SMALL = {"width": 64, "height": 64, "steps": 2, "seed": 7}


def manager_for(server, **options):
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, poll_interval_s=0.01, **options)
    return server.track(VisionManager(backend=OpenAICompatibleVisionBackend(config=config)))


@pytest.fixture
def sd_server(openai_server):
    """The loopback server dressed as sd-server 0.4.5: its model id, its A1111 API and its adapters."""
    openai_server.models = [{"id": "sd-cpp-local", "object": "model", "owned_by": "local"}]
    openai_server.enqueue("/sdapi/v1/options", Reply(json={"samples_format": "png"}))
    openai_server.enqueue("/sdapi/v1/loras", *[Reply(json=LISTED)] * 3)
    return openai_server


def txt2img_reply(server, count: int = 1) -> None:
    b64 = base64.b64encode(server_png(64, 64)).decode()
    server.enqueue("/sdapi/v1/txt2img", *[Reply(json={"images": [b64], "parameters": {}, "info": ""})] * count)


def test_sd_server_gets_adapters_as_its_lora_list_on_txt2img_after_listing_them(sd_server):
    txt2img_reply(sd_server)
    asset = manager_for(sd_server).generate_image("a lighthouse", lora_adapters=["ink:0.5"], **SMALL)
    paths = [(r.method, r.path) for r in sd_server.requests]
    assert paths[-2:] == [("GET", "/sdapi/v1/loras"), ("POST", "/sdapi/v1/txt2img")]  # listed, then sent
    lora = [{"path": "ink.safetensors", "multiplier": 0.5}]
    body = sd_server.requests_to("/sdapi/v1/txt2img")[0].json
    assert body == {"prompt": "a lighthouse", "seed": 7, "steps": 2, "width": 64, "height": 64, "lora": lora}
    assert asset.metadata["endpoint"] == "/sdapi/v1/txt2img" and asset.metadata["lora"] == lora
    assert asset.metadata["lora_adapters"][0] == {"source": "ink", "scale": 0.5}


def test_sd_server_edits_carry_the_list_on_img2img_and_calls_without_adapters_stay_on_v1(sd_server):
    from fixtures.images import make_png

    b64 = base64.b64encode(server_png(64, 64)).decode()
    sd_server.enqueue("/sdapi/v1/img2img", Reply(json={"images": [b64]}))
    manager = manager_for(sd_server)
    manager.edit_image(
        "a lighthouse", make_png(64, 64), lora_adapters=[{"source": "styles", "weight_name": "wash.safetensors"}]
    )
    assert sd_server.requests_to("/sdapi/v1/img2img")[0].json["lora"] == [
        {"path": "styles/wash.safetensors", "multiplier": 1.0}
    ]
    plain = manager.generate_image("a lighthouse", **SMALL)
    assert plain.metadata["endpoint"] == "/images/generations" and "lora" not in plain.metadata


def test_an_adapter_the_server_does_not_list_is_refused_before_generating(sd_server):
    with pytest.raises(AdapterNotAvailableError) as info:
        manager_for(sd_server).generate_image("a lighthouse", lora_adapters=["grain:0.3"], **SMALL)
    assert info.value.adapter == "grain"
    assert "lora_adapters[0].source" in str(info.value) and "ink, styles/wash" in str(info.value)
    assert "--lora-model-dir" in str(info.value)
    assert sd_server.requests_to("/sdapi/v1/txt2img") == [] and sd_server.requests_to("/images/generations") == []


def test_sd_server_045_gets_one_adapter_per_call_it_drops_all_but_the_last_of_more(sd_server):
    with pytest.raises(CapabilityNotSupportedError, match="one adapter per call"):
        manager_for(sd_server).generate_image("a lighthouse", lora_adapters=["ink", "wash"], **SMALL)
    assert sd_server.requests_to("/sdapi/v1/txt2img") == []


def test_a_name_two_files_share_must_be_given_as_a_path(openai_server):
    openai_server.models = [{"id": "sd-cpp-local", "object": "model", "owned_by": "local"}]
    openai_server.enqueue("/sdapi/v1/options", Reply(json={}))
    twins = [{"name": "ink", "path": "a/ink.safetensors"}, {"name": "ink", "path": "b/ink.gguf"}]
    openai_server.enqueue("/sdapi/v1/loras", Reply(json=twins), Reply(json=twins))
    txt2img_reply(openai_server)
    manager = manager_for(openai_server)
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_image("a lighthouse", lora_adapters=["ink"], **SMALL)
    assert info.value.field == "lora_adapters[0].source" and "a/ink.safetensors, b/ink.gguf" in str(info.value)
    manager.generate_image("a lighthouse", lora_adapters=["b/ink"], **SMALL)
    assert openai_server.requests_to("/sdapi/v1/txt2img")[0].json["lora"] == [{"path": "b/ink.gguf", "multiplier": 1.0}]


def test_list_provider_adapters_reads_sd_servers_listing(sd_server):
    adapters = manager_for(sd_server).list_provider_adapters()
    assert [(a.id, a.path) for a in adapters] == [
        ("ink", "ink.safetensors"),
        ("styles/wash", "styles/wash.safetensors"),
    ]
    assert adapters[1].raw == {"name": "wash", "path": "styles/wash.safetensors"}


@pytest.mark.parametrize(
    "body",
    [{"loras": []}, [{"name": "ink"}], [{"name": "ink", "path": 3}], ["ink.safetensors"], [{"name": "", "path": "x"}]],
)
def test_a_malformed_listing_is_a_typed_error(openai_server, body):
    openai_server.models = [{"id": "sd-cpp-local", "object": "model", "owned_by": "local"}]
    openai_server.enqueue("/sdapi/v1/options", Reply(json={}))
    openai_server.enqueue("/sdapi/v1/loras", Reply(json=body))
    with pytest.raises(InvalidProviderResponseError, match="/sdapi/v1/loras"):
        manager_for(openai_server).list_provider_adapters()


def test_a_listing_is_bounded():
    entries = [{"name": f"a{i}", "path": f"a{i}.safetensors"} for i in range(MAX_LISTED + 1)]
    with pytest.raises(InvalidProviderResponseError, match=f"over {MAX_LISTED}"):
        parse_listing(entries, "http://x/sdapi/v1/loras")
    assert len(parse_listing(entries[:MAX_LISTED], "http://x/sdapi/v1/loras")) == MAX_LISTED


@pytest.mark.parametrize(
    "payload",
    [[], {"data": "ink"}, {"data": [{"id": 3}]}, {"data": [{"id": "ink", "weight_name": 5}]}, {"data": [{"id": ""}]}],
)
def test_a_malformed_abstractvision_listing_is_a_typed_error(payload):
    with pytest.raises(InvalidProviderResponseError, match="http://x/v1/adapters"):
        parse_abstractvision_listing(payload, "http://x/v1/adapters")


def test_an_abstractvision_listing_keeps_ids_weight_names_and_sizes():
    payload = {"data": [{"id": "ink", "object": "adapter", "weight_name": "w.safetensors", "size_bytes": 12}]}
    (info,) = parse_abstractvision_listing(payload, "http://x/v1/adapters")
    assert (info.id, info.weight_name, info.size_bytes, info.path) == ("ink", "w.safetensors", 12, None)


def test_newer_sd_servers_job_api_gets_the_list_in_its_body(openai_server):
    openai_server.sdcpp_jobs = True
    openai_server.models = [{"id": "sd-cpp-local", "object": "model", "owned_by": "local"}]
    capabilities = {"model": {"name": "fake"}, "loras": LISTED}
    openai_server.enqueue("/sdcpp/v1/capabilities", Reply(json=capabilities), Reply(json=capabilities))
    manager = manager_for(openai_server)
    asset = manager.generate_image("a lighthouse", lora_adapters=["wash:0.25", "ink.safetensors"], **SMALL)
    body = openai_server.requests_to("/sdcpp/v1/img_gen")[0].json
    assert body["lora"] == [
        {"path": "styles/wash.safetensors", "multiplier": 0.25},
        {"path": "ink.safetensors", "multiplier": 1.0},
    ]
    assert asset.metadata["endpoint"] == "/sdcpp/v1/img_gen"


@pytest.mark.parametrize("dialect", ["generic", "openai", "localai", "vllm-omni", "sglang"])
def test_other_dialects_refuse_adapters_before_sending_anything(openai_server, dialect):
    manager = manager_for(openai_server, dialect=dialect, model_id="sd-local")
    assert manager.backend.get_capabilities().supports_lora is False
    with pytest.raises(CapabilityNotSupportedError, match="LoRA"):
        manager.generate_image("a lighthouse", lora_adapters=["ink"], width=64, height=64)
    assert openai_server.requests == []


def test_auto_refuses_adapters_once_it_finds_a_server_without_them(openai_server):
    manager = manager_for(openai_server, model_id="sd-local")
    assert manager.backend.get_capabilities().supports_lora is True  # it may be an sd-server: not asked yet
    with pytest.raises(CapabilityNotSupportedError, match="generic dialect"):
        manager.generate_image("a lighthouse", lora_adapters=["ink"], width=64, height=64)
    assert openai_server.requests_to("/images/generations") == []
    assert manager.backend.get_capabilities().supports_lora is False
    assert manager.list_provider_adapters() == []


def test_an_sd_server_without_its_a1111_api_refuses_adapters(openai_server):
    openai_server.models = [{"id": "sd-cpp-local", "object": "model", "owned_by": "local"}]
    with pytest.raises(CapabilityNotSupportedError, match="neither /sdapi/v1 nor /sdcpp/v1"):
        manager_for(openai_server).generate_image("a lighthouse", lora_adapters=["ink"], **SMALL)
    assert openai_server.requests_to("/images/generations") == []
