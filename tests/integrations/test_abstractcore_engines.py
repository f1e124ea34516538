"""``llm.vision`` through AbstractCore 2.30's registry against real engines: the loopback
OpenAI-shaped server and the tiny random-weight Diffusers pipeline."""

from __future__ import annotations

import pytest

from abstractvision.artifacts import LocalAssetStore
from fixtures.images import make_png

SECRET = "sk-test-secret-4242"


@pytest.fixture
def store(tmp_path):
    return LocalAssetStore(tmp_path / "artifacts")


@pytest.fixture
def http_host(vision_host, openai_server):
    return vision_host(
        vision_backend="openai-compatible",
        vision_base_url=openai_server.base_url,
        vision_model_id="sd-local",
        vision_api_key=SECRET,
    )


# ---- OpenAI-compatible service on 127.0.0.1 ------------------------------------------------------
def test_http_t2i_sends_only_request_fields(http_host, openai_server, block_network):
    data = http_host.vision.t2i("a red fox", width=16, height=16, provider="openai-compatible", metadata={"u": 1})
    assert data.startswith(b"\x89PNG")
    sent = openai_server.last
    assert sent.json["model"] == "sd-local" and sent.json["prompt"] == "a red fox"
    assert not {"provider", "metadata", "run_id", "tags", "artifact_store"} & set(sent.json)
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert block_network == []


def test_http_model_argument_selects_the_model(http_host, openai_server):
    http_host.vision.t2i("a", model="flux-local")
    assert openai_server.last.json["model"] == "flux-local"
    http_host.vision.t2i("b")
    assert openai_server.last.json["model"] == "sd-local"


def test_http_i2i_accepts_bytes_paths_and_refs(http_host, openai_server, store, tmp_path):
    source = make_png(16, 16)
    path = tmp_path / "in.png"
    path.write_bytes(source)
    for image in (source, str(path), store.store_bytes(source, content_type="image/png")):
        ref = http_host.vision.i2i("paint it", image, artifact_store=store, run_id="r-1", tags={"t": "v"})
        assert ref["run_id"] == "r-1" and ref["tags"] == {"t": "v"}
        (uploaded,) = [f for name, files in openai_server.last.files.items() if name.startswith("image") for f in files]
        assert uploaded.data == source


def test_http_batch_with_only_seeds_makes_one_image_per_seed(http_host, openai_server, store):
    refs = http_host.vision.t2i_batch("a", count=1, seeds=[7, 8], artifact_store=store, metadata={"who": "me"})
    assert [r["metadata"]["seed"] for r in refs] == [7, 8]
    assert all(r["metadata"]["who"] == "me" and SECRET not in str(r) for r in refs)
    assert all(store.load_bytes(r).startswith(b"\x89PNG") for r in refs)


def test_http_catalog_is_plain_dicts_filtered_by_task(http_host, openai_server):
    openai_server.models = [
        {"id": "sd-local", "object": "model", "capabilities": ["text_to_image", "image_to_image"]},
        {"id": "wan-video", "object": "model", "capabilities": ["text_to_video"]},
    ]
    models = http_host.vision.list_provider_models(task="text_to_image")
    assert [m["id"] for m in models] == ["sd-local"]
    assert models[0]["provider"] == "openai" and models[0]["tasks"] == ["text_to_image", "image_to_image"]
    assert {m["id"] for m in http_host.vision.list_provider_models()} == {"sd-local", "wan-video"}


def test_http_residency_answers_honestly_that_nothing_is_resident(http_host):
    record = http_host.vision.load_resident_model({"model": "sd-local"})
    assert record["loaded"] is False and record["scope"] == "remote" and "remote service" in record["reason"]
    assert http_host.vision.list_loaded_models() == []
    assert http_host.vision.unload_resident_model({})["unloaded"] is False


def test_http_tools_over_the_configured_backend_return_refs(http_host, store, openai_server):
    from abstractvision import VisionManager
    from abstractvision.integrations.abstractcore import make_vision_tools

    backend = http_host.capabilities.get_vision().manager().backend
    tools = {t.name: t for t in make_vision_tools(vision_manager=VisionManager(backend=backend, store=store))}
    ref = tools["vision_generate_image"].function(prompt="a kite", width=16, height=16)
    edited = tools["vision_edit_image"].function(prompt="at night", image=ref["$artifact"])
    assert store.load_bytes(edited).startswith(b"\x89PNG")
    assert openai_server.last.path.endswith("/images/edits")


def test_http_configured_by_environment(vision_host, openai_server, monkeypatch):
    monkeypatch.setenv("ABSTRACTCORE_VISION_BACKEND", "openai-compatible")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("ABSTRACTVISION_MODEL_ID", "env-model")
    vision_host().vision.t2i("a")
    assert openai_server.last.json["model"] == "env-model"


def test_http_owner_keys_win_over_the_environment(vision_host, openai_server, monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_BACKEND", "diffusers")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("ABSTRACTVISION_MODEL_ID", "env-model")
    host = vision_host(vision_backend="openai-compatible", vision_base_url=openai_server.base_url, vision_model_id="m")
    host.vision.t2i("a")
    assert openai_server.last.json["model"] == "m"
    assert SECRET not in repr(host.capabilities.get_vision().manager())


# ---- the tiny Diffusers pipeline -----------------------------------------------------------------
@pytest.fixture
def diffusers_host(vision_host, tiny_diffusers_pipeline, block_network):
    host = vision_host(vision_backend="diffusers", vision_model_id=str(tiny_diffusers_pipeline), vision_device="cpu")
    yield host
    host.vision.unload_resident_model({})


SMALL = {"width": 64, "height": 64, "steps": 2}


@pytest.mark.slow
def test_diffusers_t2i_i2i_and_batch_through_the_registry(diffusers_host, store, tmp_path):
    vision = diffusers_host.vision
    image = vision.t2i("a red fox", seed=1, **SMALL)
    assert image.startswith(b"\x89PNG")
    path = tmp_path / "in.png"
    path.write_bytes(image)
    ref = store.store_bytes(image, content_type="image/png")
    for source in (image, str(path), ref):
        assert vision.i2i("at night", source, steps=2, seed=2, artifact_store=store)["$artifact"]
    refs = vision.t2i_batch("a fox", count=1, seeds=[3, 4], artifact_store=store, **SMALL)
    assert [r["metadata"]["seed"] for r in refs] == [3, 4]
    events = []
    vision.t2i("a fox", seed=5, on_progress=events.append, **SMALL)
    assert [e.phase for e in events][0] == "start" and events[-1].phase == "end"
    assert sum(e.phase == "step" for e in events) == 2


@pytest.mark.slow
def test_diffusers_residency_loads_and_unloads_the_pipeline(diffusers_host):
    backend = diffusers_host.capabilities.get_vision().manager().backend
    assert backend.loaded is False
    record = diffusers_host.vision.load_resident_model({})
    assert record["loaded"] is True and record["scope"] == "local" and backend.loaded is True
    assert [r["provider"] for r in diffusers_host.vision.list_loaded_models()] == ["diffusers"]
    assert diffusers_host.vision.unload_resident_model({})["unloaded"] is True
    assert backend.loaded is False and diffusers_host.vision.list_resident_models() == []


@pytest.mark.slow
def test_upscale_image_runs_where_the_owner_configured_an_upscaler(vision_host, tiny_upscale_pipeline, store):
    """AbstractCore's ``upscale_image`` refuses without an upscaler (the plugin tests) and runs with one."""
    from abstractvision.media import inspect_image

    host = vision_host(
        vision_backend="diffusers", vision_diffusers_upscaler=str(tiny_upscale_pipeline), vision_device="cpu"
    )
    data = host.vision.upscale_image(make_png(16, 16), scale=2, steps=1, seed=3)
    assert (inspect_image(data).width, inspect_image(data).height) == (32, 32)
    ref = host.vision.upscale_image(make_png(16, 16), resolution=(40, 20), steps=1, artifact_store=store)
    assert ref["metadata"]["task"] == "image_upscale" and ref["metadata"]["width"] == 40
