"""``models``, ``tasks``, ``show-model`` through the real click group."""

from __future__ import annotations

import json

from abstractvision import VisionModelCapabilitiesRegistry
from abstractvision.types import TASKS


def test_models_lists_every_registry_model(invoke):
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [m["id"] for m in listed] == VisionModelCapabilitiesRegistry().list_models()
    assert all(set(m) == {"id", "provider", "family", "tasks"} for m in listed)


def test_models_task_filter_keeps_only_capable_models(invoke):
    registry = VisionModelCapabilitiesRegistry()
    result = invoke("models", "--task", "image_to_image", "--json")
    ids = [m["id"] for m in json.loads(result.stdout)]
    assert ids == registry.models_for_task("image_to_image")
    assert ids != registry.list_models()  # the filter really filters
    assert all("image_to_image" in m["tasks"] for m in json.loads(result.stdout))


def test_models_table_shows_ids(invoke):
    result = invoke("models")
    assert result.exit_code == 0
    for model_id in VisionModelCapabilitiesRegistry().list_models():
        assert model_id in result.stdout


def test_models_rejects_an_unknown_task_as_usage_error(invoke):
    result = invoke("models", "--task", "painting")
    assert result.exit_code == 2
    assert "painting" in result.output


def test_tasks_lists_the_five_tasks(invoke):
    result = invoke("tasks", "--json")
    assert [t["task"] for t in json.loads(result.stdout)] == list(TASKS)
    assert all(t["description"] for t in json.loads(result.stdout))


def test_show_model_gives_params_with_defaults_and_limits(invoke):
    registry = VisionModelCapabilitiesRegistry()
    model_id = registry.models_for_task("text_to_image")[0]
    caps = registry.get(model_id)
    result = invoke("show-model", model_id, "--json")
    shown = json.loads(result.stdout)
    assert shown["id"] == model_id and set(shown["tasks"]) == set(caps.tasks)
    for task, spec in caps.tasks.items():
        for name, param in spec.params.items():
            assert shown["tasks"][task]["params"][name]["default"] == param.default
            assert shown["tasks"][task]["params"][name]["max"] == param.max


def test_show_model_table_names_each_task(invoke):
    model_id = VisionModelCapabilitiesRegistry().list_models()[0]
    result = invoke("show-model", model_id)
    assert result.exit_code == 0
    for task in VisionModelCapabilitiesRegistry().get(model_id).tasks:
        assert task in result.stdout


def test_show_model_unknown_id_is_one_line_exit_1(invoke):
    result = invoke("show-model", "gpt-image")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "did you mean gpt-image-1" in result.stderr
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(invoke):
    result = invoke("--debug", "show-model", "no-such-model")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "UnknownModelError" in result.stderr
