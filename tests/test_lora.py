"""LoRA adapters as the caller writes them: one checked shape, refused before any engine work."""

from __future__ import annotations

import dataclasses
import math

import pytest
from tests.fixtures.fake_backend import RecordingBackend

from abstractvision import LoRAAdapterSpec, VisionManager
from abstractvision.errors import CapabilityNotSupportedError, InvalidRequestError
from abstractvision.lora import MAX_ADAPTERS, adapter_name, as_lora_adapters, describe, parse_lora
from abstractvision.types import VisionBackendCapabilities

_LORA_CAPS = VisionBackendCapabilities(supported_tasks=("text_to_image", "image_to_image"), supports_lora=True)


@pytest.mark.parametrize(
    "word, source, scale",
    [
        ("styles/ink.safetensors", "styles/ink.safetensors", 1.0),
        ("styles/ink.safetensors:0.5", "styles/ink.safetensors", 0.5),
        ("ink:-1", "ink", -1.0),
        ("user/repo", "user/repo", 1.0),
        ("C:\\loras\\ink.safetensors", "C:\\loras\\ink.safetensors", 1.0),
        ("C:\\loras\\ink.safetensors:0.25", "C:\\loras\\ink.safetensors", 0.25),
        ("  ink:1e-1 ", "ink", 0.1),
    ],
)
def test_words_split_a_scale_only_when_it_reads_as_a_number(word, source, scale):
    spec = parse_lora(word)
    assert (spec.source, spec.scale) == (source, scale)


@pytest.mark.parametrize("word", ["", "   ", ":0.5", "ink:nan", "ink:inf", "ink:11", "a\x00b"])
def test_bad_words_are_refused_naming_the_option(word):
    with pytest.raises(InvalidRequestError, match=r"^--lora") as caught:
        parse_lora(word, "--lora")
    assert caught.value.field == "--lora"


def test_every_form_becomes_the_same_spec():
    forms = [
        LoRAAdapterSpec("ink", 0.5),
        {"source": "ink", "scale": 0.5},
        "ink:0.5",
    ]
    assert {as_lora_adapters(form) for form in forms} == {(LoRAAdapterSpec("ink", 0.5),)}
    assert as_lora_adapters(None) == ()
    assert as_lora_adapters([]) == ()
    assert isinstance(as_lora_adapters([{"source": "a", "scale": 1}])[0].scale, float)


@pytest.mark.parametrize(
    "value, message",
    [
        (42, r"lora_adapters: expected a list of adapters, got int"),
        ([42], r"lora_adapters\[0\]: expected a LoRAAdapterSpec"),
        ({"scale": 1.0}, r"lora_adapters\[0\]\.source: is required"),
        ({"source": "a", "strength": 1.0}, r"unknown key\(s\) strength"),
        ({"source": "a", "scale": "0.5"}, r"\.scale: must be a finite number"),
        ({"source": "a", "scale": True}, r"\.scale: must be a finite number"),
        ({"source": "a", "scale": math.nan}, r"\.scale: must be a finite number"),
        ({"source": "a", "scale": -20}, r"\.scale: -20 is outside"),
        ({"source": "a", "weight_name": "../../etc/passwd"}, r"\.weight_name: must be a relative"),
        ({"source": "a", "adapter_name": "a b<lora>"}, r"\.adapter_name: use 1-64"),
        (["a", "dir/a.safetensors"], r"lora_adapters\[1\]: a second adapter named 'a'"),
        (["a"] * (MAX_ADAPTERS + 1), rf"{MAX_ADAPTERS + 1} adapters, over the limit of {MAX_ADAPTERS}"),
    ],
)
def test_bad_adapters_name_the_item_and_field(value, message):
    with pytest.raises(InvalidRequestError, match=message):
        as_lora_adapters(value)


def test_names_come_from_the_source_unless_given():
    assert adapter_name(LoRAAdapterSpec("loras/ink.safetensors")) == "ink"
    assert adapter_name(LoRAAdapterSpec("user/pixel-art")) == "pixel-art"
    assert adapter_name(LoRAAdapterSpec("user/styles", weight_name="ink.safetensors")) == "styles-ink"
    assert adapter_name(LoRAAdapterSpec("user/styles", adapter_name="mine")) == "mine"
    # two files of one repo are two adapters, not a duplicate
    assert as_lora_adapters(
        [
            {"source": "user/styles", "weight_name": "a.safetensors"},
            {"source": "user/styles", "weight_name": "b.safetensors"},
        ]
    )


def test_the_backend_gets_checked_specs_and_metadata_records_them():
    backend = RecordingBackend(caps=_LORA_CAPS)
    asset = VisionManager(backend).generate_image("a cat", lora_adapters=["ink:0.5", {"source": "user/repo"}], seed=1)
    ((_, request),) = backend.calls
    assert request.lora_adapters == (LoRAAdapterSpec("ink", 0.5), LoRAAdapterSpec("user/repo"))
    assert asset.metadata["lora_adapters"] == [{"source": "ink", "scale": 0.5}, {"source": "user/repo", "scale": 1.0}]


def test_batches_and_edits_carry_adapters(png_bytes):
    backend = RecordingBackend(caps=_LORA_CAPS)
    manager = VisionManager(backend)
    assets = manager.generate_image_batch("a cat", count=2, lora_adapters="ink")
    manager.edit_image("a dog", png_bytes, lora_adapters=[LoRAAdapterSpec("ink", 2.0)])
    assert [request.lora_adapters for _, request in backend.calls] == [(LoRAAdapterSpec("ink"),)] * 2 + [
        (LoRAAdapterSpec("ink", 2.0),)
    ]
    assert all(asset.metadata["lora_adapters"] == [{"source": "ink", "scale": 1.0}] for asset in assets)


def test_a_call_without_adapters_records_none():
    backend = RecordingBackend(caps=_LORA_CAPS)
    asset = VisionManager(backend).generate_image("a cat", seed=1)
    assert backend.calls[0][1].lora_adapters == ()
    assert "lora_adapters" not in asset.metadata


def test_a_backend_without_lora_refuses_before_running():
    backend = RecordingBackend()
    with pytest.raises(CapabilityNotSupportedError, match="does not support LoRA adapters"):
        VisionManager(backend).generate_image("a cat", lora_adapters=["ink"])
    assert backend.calls == []
    # an empty list asks for nothing, so it runs
    VisionManager(backend).generate_image("a cat", lora_adapters=[])
    assert len(backend.calls) == 1


def test_bad_adapters_are_refused_before_the_backend():
    backend = RecordingBackend(caps=_LORA_CAPS)
    with pytest.raises(InvalidRequestError, match=r"lora_adapters\[0\]\.scale") as caught:
        VisionManager(backend).generate_image("a cat", lora_adapters=[{"source": "ink", "scale": "lots"}])
    assert caught.value.field == "lora_adapters[0]"
    assert backend.calls == []


def test_describe_leaves_out_unset_fields():
    spec = dataclasses.replace(LoRAAdapterSpec("repo", 0.7), weight_name="w.safetensors")
    assert describe([spec]) == [{"source": "repo", "scale": 0.7, "weight_name": "w.safetensors"}]


def test_backends_without_adapters_list_none():
    assert VisionManager(RecordingBackend()).list_provider_adapters() == []
