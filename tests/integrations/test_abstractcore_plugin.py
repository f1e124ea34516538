"""The plugin through AbstractCore 2.30's own registry (entry point, facade, factory, tools),
with the in-test recording backend: routing, inputs, outputs, batches, progress, residency, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from abstractvision.artifacts import LocalAssetStore
from abstractvision.errors import CapabilityNotSupportedError, InvalidRequestError
from fixtures.images import make_png

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def host(vision_host, recording_provider):
    return vision_host(vision_backend="recording")


@pytest.fixture
def store(tmp_path):
    return LocalAssetStore(tmp_path / "artifacts")


def calls(backends):
    return [call for backend in backends for call in backend.calls]


def test_the_entry_point_is_discovered_without_plugin_errors(host):
    status = host.capabilities.status()
    assert {"name": "abstractvision", "value": "abstractvision.integrations.abstractcore_plugin:register"} in status[
        "plugins_seen"
    ]
    assert status["plugin_errors"] == []
    vision = status["capabilities"]["vision"]
    assert vision["selected_backend"] == "abstractvision:openai"
    ids = [b["backend_id"] for b in vision["backends"]]
    assert ids == ["abstractvision:openai", "abstractvision:openai-compatible"]
    infos = {info.backend_id: info for info in host.capabilities.list_backend_infos("vision")}
    for info in infos.values():
        assert info.description and info.install_hint and "vision_backend" in info.config_hint


def test_t2i_returns_bytes_and_keeps_routing_arguments_away_from_the_provider(host, recording_provider):
    data = host.vision.t2i("a red fox", seed=5, steps=2, provider="recording", style="ink")
    assert data.startswith(b"\x89PNG")
    (task, request), *_ = calls(recording_provider)
    assert (task, request.seed, request.steps) == ("text_to_image", 5, 2)
    assert request.extra == {"style": "ink"}


def test_model_selects_a_backend_for_that_model(host, recording_provider):
    host.vision.t2i("a", model="model-b")
    host.vision.t2i("b", model="model-b")
    host.vision.t2i("c")
    assert len(recording_provider) == 2  # the default one, and one for model-b kept for reuse
    assert all("model" not in request.extra for _, request in calls(recording_provider))


def test_an_unknown_provider_names_the_accepted_values(host):
    with pytest.raises(Exception, match="provider='dall-e-local' is not a vision backend; accepted values: openai"):
        host.vision.t2i("a", provider="dall-e-local")


def test_outputs_become_artifact_refs_with_run_id_tags_and_metadata(host, recording_provider, store):
    ref = host.vision.t2i(
        "a lighthouse", seed=9, artifact_store=store, run_id="run-1", tags={"kind": "demo"}, metadata={"user": "ada"}
    )
    assert ref["run_id"] == "run-1" and ref["tags"] == {"kind": "demo"}
    assert ref["metadata"]["user"] == "ada" and ref["metadata"]["seed"] == 9
    assert store.load_bytes(ref).startswith(b"\x89PNG")
    assert store.get_metadata(ref)["metadata"]["user"] == "ada"
    (_, request), *_ = calls(recording_provider)
    assert request.extra == {}  # metadata/run_id/tags never reach the provider


def test_i2i_reads_bytes_paths_and_refs(host, recording_provider, store, tmp_path):
    source = make_png(24, 24)
    path = tmp_path / "in.png"
    path.write_bytes(source)
    ref = store.store_bytes(source, content_type="image/png")
    host.vision.i2i("paint it", source)
    host.vision.i2i("paint it", str(path))
    host.vision.i2i("paint it", ref, artifact_store=store, mask=store.store_bytes(make_png(24, 24, mode="L")))
    images = [request.image for _, request in calls(recording_provider)]
    assert images == [source, source, source]
    assert calls(recording_provider)[2][1].mask is not None


def test_a_ref_without_a_store_is_a_clear_error(host, store):
    ref = store.store_bytes(make_png(), content_type="image/png")
    with pytest.raises(InvalidRequestError, match="image: got an artifact ref but no artifact_store"):
        host.vision.i2i("paint it", ref)


def test_t2i_batch_with_only_seeds_makes_one_image_per_seed(host, recording_provider, store):
    refs = host.vision.t2i_batch("a", count=1, seeds=[11, 12], artifact_store=store, run_id="r")
    assert [r["metadata"]["seed"] for r in refs] == [11, 12]
    assert [request.seed for _, request in calls(recording_provider)] == [11, 12]


def test_i2i_batch_counts_and_returns_bytes(host, recording_provider):
    outputs = host.vision.i2i_batch("a", make_png(), count=2, seed=3)
    assert len(outputs) == 2 and all(o.startswith(b"\x89PNG") for o in outputs)
    assert [request.seed for _, request in calls(recording_provider)] == [3, 4]


def test_on_progress_reaches_the_backend_hook(host):
    events = []
    host.vision.t2i("a", steps=3, on_progress=events.append)
    assert [e.phase for e in events] == ["start", "step", "step", "step", "end"]


def test_tasks_the_backend_cannot_do_are_refused_with_a_typed_error(host):
    with pytest.raises(CapabilityNotSupportedError):
        host.vision.t2v("a")
    with pytest.raises(CapabilityNotSupportedError):
        host.vision.upscale_image(make_png(), scale=2)


def test_catalog_methods_answer_with_plain_lists(host):
    assert host.vision.list_provider_models(task="text_to_image") == []
    assert host.vision.list_provider_adapters(model="x", task="text_to_image") == []
    assert host.vision.available_providers()["available_providers"] == ["recording"]


def test_residency_loads_lists_and_unloads_a_local_backend(host, recording_provider):
    record = host.vision.load_resident_model({})
    backend = recording_provider[0]
    assert record["loaded"] is True and record["loaded_new"] is True and backend.preloads == 1
    assert host.vision.load_resident_model({})["loaded_new"] is False
    listed = host.vision.list_loaded_models()
    assert [r["runtime_id"] for r in listed] == [record["runtime_id"]]
    assert host.vision.list_resident_models({"provider": "recording"}) == listed
    assert host.vision.list_loaded_models({"provider": "other"}) == []
    unloaded = host.vision.unload_resident_model({})
    assert unloaded["unloaded"] is True and unloaded["loaded"] is False and backend.unloads == 1
    assert host.vision.list_loaded_models() == []
    assert host.vision.unload_resident_model({})["unloaded"] is False  # idempotent


def test_a_misconfigured_owner_fails_at_creation_with_the_config_hint(vision_host):
    from abstractcore.capabilities.errors import CapabilityUnavailableError

    host = vision_host(vision_backend="openai-compatible")
    with pytest.raises(CapabilityUnavailableError) as info:
        host.vision.t2i("a")
    message = str(info.value)
    assert "vision_base_url" in message and "Configure:" in message


def test_a_failing_backend_registration_does_not_lose_the_tools(monkeypatch):
    pytest.importorskip("abstractcore.capabilities")
    from abstractcore.capabilities.registry import CapabilityRegistry

    from abstractvision.integrations.abstractcore_plugin import register

    registry = CapabilityRegistry(owner=None)

    def broken(**kwargs):
        raise RuntimeError("host refused the backend")

    monkeypatch.setattr(registry, "register_vision_backend", broken)
    with pytest.raises(RuntimeError, match="host refused"):
        register(registry)
    assert [t.name for t in registry._capability_tools["vision"]] == ["vision_generate_image", "vision_edit_image"]


def test_a_failing_tool_registration_does_not_lose_the_backends(monkeypatch):
    pytest.importorskip("abstractcore.capabilities")
    from abstractcore.capabilities.registry import CapabilityRegistry

    from abstractvision.integrations.abstractcore_plugin import register

    registry = CapabilityRegistry(owner=None)
    monkeypatch.setattr(registry, "register_capability_tools", lambda *a: (_ for _ in ()).throw(ValueError("no")))
    with pytest.raises(ValueError):
        register(registry)
    assert sorted(registry._registrations["vision"]) == ["abstractvision:openai", "abstractvision:openai-compatible"]


def test_importing_and_registering_the_plugin_loads_no_heavy_stack():
    code = """
import json, sys
import abstractvision.integrations.abstractcore_plugin as plugin
calls = []
class Registry:
    def register_vision_backend(self, **kw): calls.append(kw["backend_id"])
    def register_capability_tools(self, capability, tools): calls.append([t.name for t in tools])
plugin.register(Registry())
heavy = [m for m in ("torch", "diffusers", "numpy", "PIL", "transformers", "stable_diffusion_cpp") if m in sys.modules]
print(json.dumps({"heavy": heavy, "calls": calls}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    assert result["calls"][0] == "abstractvision:openai"
