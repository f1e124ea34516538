"""LoRA adapters through AbstractCore 2.30's host: ``lora_adapters`` on ``t2i``/``i2i`` (mappings, as
AbstractCore's server sends them, or ``PATH_OR_ID[:SCALE]`` words) and ``list_provider_adapters``.

The engine is the slow test backend, registered as ``slow`` and configured by the owner key
``vision_slow_lora_dir`` (derived from its declared setting like every other): each adapter shifts its
colour by the adapter's name and scale, so an adapter's effect is a pixel.
"""

from __future__ import annotations

import pytest

from abstractvision import VisionManager
from abstractvision.backends import register_backend, unregister_backend
from abstractvision.errors import AdapterNotAvailableError, CapabilityNotSupportedError, InvalidRequestError
from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.images import make_png
from fixtures.loras import pixel


@pytest.fixture
def host(vision_host, lora_folder):
    register_backend("slow", "abstractvision.testing.slow:SlowBackend", description="slow test backend")
    yield vision_host(vision_backend="slow", vision_slow_lora_dir=str(lora_folder), vision_slow_step_s="0")
    unregister_backend("slow")


def expected(lora_folder, adapters, seed: int = 5) -> tuple[int, ...]:
    backend = SlowBackend(SlowConfig(step_s=0.0, lora_dir=str(lora_folder)))
    return pixel(VisionManager(backend=backend).generate_image("a", seed=seed, lora_adapters=adapters).data)


def test_lora_adapters_reach_the_engine_from_t2i_and_i2i(host, lora_folder):
    baseline = pixel(host.vision.t2i("a", seed=5))
    as_mappings = host.vision.t2i("a", seed=5, lora_adapters=[{"source": "ink", "scale": 0.5}, {"source": "glow"}])
    assert pixel(as_mappings) == expected(lora_folder, ["ink:0.5", "glow"]) != baseline
    as_words = host.vision.t2i("a", seed=5, lora_adapters=["ink:0.5", "glow"])
    assert pixel(as_words) == pixel(as_mappings)  # (the bytes differ: each PNG carries its own timings)
    edited = host.vision.i2i("a", make_png(16, 16), seed=5, lora_adapters=["glow:2"])
    assert pixel(edited) == expected(lora_folder, ["glow:2"])
    assert pixel(host.vision.t2i("a", seed=5)) == baseline  # adapters belong to the call that names them


def test_lora_adapters_are_recorded_on_artifact_refs(host, tmp_path):
    from abstractvision.artifacts import LocalAssetStore

    ref = host.vision.t2i("a", seed=1, lora_adapters=["ink:0.25"], artifact_store=LocalAssetStore(tmp_path / "a"))
    assert ref["metadata"]["lora_adapters"] == [{"source": "ink", "scale": 0.25}]


def test_list_provider_adapters_answers_plain_dicts_for_image_tasks(host, lora_folder):
    listed = host.vision.list_provider_adapters()
    assert [entry["id"] for entry in listed] == ["glow", "ink"]
    ink = listed[1]
    assert ink["provider"] == "slow" and ink["backend_id"] == host.vision.backend_id
    assert ink["path"] == str(lora_folder / "ink.safetensors") and ink["size_bytes"] > 0
    assert ink["compatible_tasks"] == ["text_to_image", "image_to_image"]
    assert host.vision.list_provider_adapters(task="image_to_image") == listed
    assert host.vision.list_provider_adapters(task="text_to_video") == []


def test_missing_and_malformed_adapters_are_typed_errors(host):
    with pytest.raises(AdapterNotAvailableError, match="adapter 'sketch' not found"):
        host.vision.t2i("a", lora_adapters=["sketch"])
    with pytest.raises(InvalidRequestError, match=r"lora_adapters\[0\]: unknown key\(s\) target_role"):
        host.vision.t2i("a", lora_adapters=[{"source": "ink", "target_role": "transformer"}])
    with pytest.raises(InvalidRequestError, match=r"lora_adapters\[0\].scale"):
        host.vision.t2i("a", lora_adapters=[{"source": "ink", "scale": 99}])


def test_a_backend_without_lora_refuses_adapters(vision_host, recording_provider):
    host = vision_host(vision_backend="recording")
    with pytest.raises(CapabilityNotSupportedError, match="does not support LoRA adapters"):
        host.vision.t2i("a", lora_adapters=["ink"])
    assert [call for backend in recording_provider for call in backend.calls] == []
