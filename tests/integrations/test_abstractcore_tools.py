"""Agent tools: shapes AbstractCore accepts, artifact-ref results, chaining by id, lazy resolution."""

from __future__ import annotations

import pytest

from abstractvision import VisionManager
from abstractvision.artifacts import LocalAssetStore
from abstractvision.errors import ArtifactNotFoundError, InvalidRequestError
from abstractvision.integrations.abstractcore import make_vision_tools
from abstractvision.types import VisionBackendCapabilities
from fixtures.fake_backend import RecordingBackend
from fixtures.images import make_png


def by_name(tools):
    return {tool.name: tool for tool in tools}


@pytest.fixture
def store(tmp_path):
    return LocalAssetStore(tmp_path / "artifacts")


@pytest.fixture
def manager(store):
    return VisionManager(backend=RecordingBackend(), store=store)


def test_image_tools_have_names_descriptions_and_schemas(manager):
    tools = by_name(make_vision_tools(vision_manager=manager))
    assert list(tools) == ["vision_generate_image", "vision_edit_image"]
    generate = tools["vision_generate_image"]
    assert generate.description and len(generate.description) <= 200
    assert generate.required == ["prompt"]
    assert generate.parameters["width"]["type"] == "integer"
    schema = generate.json_schema()
    assert schema["type"] == "object" and schema["required"] == ["prompt"]
    assert tools["vision_edit_image"].required == ["image", "prompt"]
    assert generate.to_dict()["required_args"] == ["prompt"]


def test_tools_return_refs_and_chain_by_artifact_id(manager, store):
    tools = by_name(make_vision_tools(vision_manager=manager))
    ref = tools["vision_generate_image"].function(prompt="a red fox", seed=4, steps=2)
    assert set(ref) >= {"$artifact", "content_type", "size_bytes"}
    assert store.load_bytes(ref).startswith(b"\x89PNG")
    edited = tools["vision_edit_image"].function(prompt="make it blue", image=ref["$artifact"])
    assert edited["$artifact"] != ref["$artifact"]
    (_, first), (_, second) = manager.backend.calls
    assert first.seed == 4 and second.image == store.load_bytes(ref)


def test_tools_read_file_paths_and_keep_bytes_out_of_the_result(manager, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(make_png(20, 20))
    edit = by_name(make_vision_tools(vision_manager=manager))["vision_edit_image"]
    ref = edit.function(prompt="sketch", image=str(path))
    assert not any(isinstance(v, bytes) for v in ref.values())
    assert manager.backend.calls[0][1].image == path.read_bytes()


def test_a_manager_without_store_still_yields_refs(tmp_path, monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_STORE_DIR", str(tmp_path / "default-store"))
    tools = by_name(make_vision_tools(vision_manager=VisionManager(backend=RecordingBackend())))
    ref = tools["vision_generate_image"].function(prompt="a")
    assert LocalAssetStore(tmp_path / "default-store").load_bytes(ref).startswith(b"\x89PNG")


def test_bad_tool_arguments_are_typed_errors(manager):
    tools = by_name(make_vision_tools(vision_manager=manager))
    with pytest.raises(InvalidRequestError, match="unknown argument"):
        tools["vision_generate_image"].function(prompt="a", colour="red")
    with pytest.raises(ArtifactNotFoundError):
        tools["vision_edit_image"].function(prompt="a", image="0" * 64)


def test_video_tools_only_when_the_backend_supports_video(store):
    caps = VisionBackendCapabilities(supported_tasks=("text_to_image", "image_to_image", "text_to_video"))
    backend = RecordingBackend(caps=caps)
    names = [t.name for t in make_vision_tools(vision_manager=VisionManager(backend=backend, store=store))]
    assert names == ["vision_generate_image", "vision_edit_image", "vision_generate_video"]


def test_model_id_narrows_tools_and_adds_its_limits(manager):
    tools = by_name(make_vision_tools(vision_manager=manager, model_id="runwayml/stable-diffusion-v1-5"))
    width = tools["vision_generate_image"].parameters["width"]
    assert (width["minimum"], width["maximum"], width["default"]) == (64, 1024, 512)


def test_registered_tools_resolve_the_backend_from_the_environment_on_first_call(recording_provider, monkeypatch):
    tools = by_name(make_vision_tools())
    assert recording_provider == []  # nothing built at registration
    monkeypatch.setenv("ABSTRACTVISION_BACKEND", "recording")
    ref = tools["vision_generate_image"].function(prompt="a")
    tools["vision_generate_image"].function(prompt="b")
    assert len(recording_provider) == 1 and ref["$artifact"]


def test_abstractcore_serves_the_plugin_tools(vision_host, recording_provider, monkeypatch):
    monkeypatch.setenv("ABSTRACTVISION_BACKEND", "recording")
    host = vision_host()
    tools = by_name(host.capabilities.capability_tools("vision"))
    assert set(tools) == {"vision_generate_image", "vision_edit_image"}
    ref = tools["vision_generate_image"].function(prompt="a", seed=1)
    assert ref["metadata"]["seed"] == 1
    assert tools["vision_generate_image"].to_dict()["required_args"] == ["prompt"]
