"""The capability registry: API, validation of the file, replacement by environment."""

from __future__ import annotations

import copy
import json

import pytest

from abstractvision import VisionModelCapabilitiesRegistry
from abstractvision.errors import CapabilityNotSupportedError, CapabilityRegistryError, UnknownModelError
from abstractvision.types import TASKS

MINIMAL = {
    "schema_version": 1,
    "tasks": {t: {"description": t} for t in TASKS},
    "models": {
        "m1": {
            "provider": "test",
            "aliases": ["org/M1"],
            "tasks": {
                "text_to_image": {"params": {"width": {"default": 512, "min": 64, "max": 1024, "multiple_of": 8}}}
            },
        }
    },
}


def test_packaged_registry_api():
    registry = VisionModelCapabilitiesRegistry()
    assert registry.list_tasks() == list(TASKS)
    assert "runwayml/stable-diffusion-v1-5" in registry.list_models()
    assert "runwayml/stable-diffusion-v1-5" in registry.models_for_task("image_to_image")
    assert registry.supports("dall-e-3", "text_to_image")
    assert not registry.supports("dall-e-3", "image_to_image")
    assert not registry.supports("unknown-model", "text_to_image")
    spec = registry.require_support("runwayml/stable-diffusion-v1-5", "text_to_image")
    assert spec.params["width"].multiple_of == 8
    assert spec.defaults()["width"] == 512
    assert registry.get("stable-diffusion-v1-5/stable-diffusion-v1-5").id == "runwayml/stable-diffusion-v1-5"


def test_errors_are_typed_and_helpful():
    registry = VisionModelCapabilitiesRegistry()
    with pytest.raises(UnknownModelError, match="did you mean"):
        registry.get("dall-e-4")
    with pytest.raises(CapabilityNotSupportedError, match="supports: text_to_image"):
        registry.require_support("dall-e-3", "image_to_image")
    with pytest.raises(CapabilityNotSupportedError, match="unknown task"):
        registry.models_for_task("painting")


def test_aliases_and_case_insensitive_lookup():
    registry = VisionModelCapabilitiesRegistry(data=MINIMAL)
    assert registry.get("ORG/m1").id == "m1"
    assert registry.get("M1").id == "m1"


def _broken(path_in_doc, value):
    doc = copy.deepcopy(MINIMAL)
    target = doc
    for key in path_in_doc[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path_in_doc[-1]]
    else:
        target[path_in_doc[-1]] = value
    return doc


@pytest.mark.parametrize(
    "path_in_doc,value,match",
    [
        (("schema_version",), 2, "schema_version"),
        (("models", "m1", "provider"), KeyError, r"models\['m1'\] is missing the required field 'provider'"),
        (("models", "m1", "tasks", "painting"), {}, r"models\['m1'\].tasks\['painting'\]: unknown task"),
        (("models", "m1", "tasks", "text_to_image", "params", "width", "max"), 10, r"params\['width'\]: min 64"),
        (("models", "m1", "tasks", "text_to_image", "params", "width", "default"), 4096, "outside"),
        (("models", "m1", "tasks", "text_to_image", "params", "width", "colour"), 1, "colour is not a known field"),
        (("models", "m1", "tasks", "text_to_image", "params", "width", "multiple_of"), "8", "must be int"),
        (("models", "m1", "tasks"), {}, "at least one task"),
        (("models", "m1", "aliases"), "org/M1", "aliases must be list"),
    ],
)
def test_malformed_entries_are_named(path_in_doc, value, match):
    with pytest.raises(CapabilityRegistryError, match=match):
        VisionModelCapabilitiesRegistry(data=_broken(path_in_doc, value))


def test_environment_replaces_the_file(monkeypatch, tmp_path):
    path = tmp_path / "caps.json"
    path.write_text(json.dumps(MINIMAL))
    monkeypatch.setenv("ABSTRACTVISION_MODEL_CAPABILITIES_PATH", str(path))
    assert VisionModelCapabilitiesRegistry().list_models() == ["m1"]


def test_unreadable_files_are_typed(tmp_path):
    with pytest.raises(CapabilityRegistryError, match="cannot read"):
        VisionModelCapabilitiesRegistry(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CapabilityRegistryError, match="not valid JSON"):
        VisionModelCapabilitiesRegistry(bad)
