"""The backend table: built-ins in order, and ``register_backend`` / ``unregister_backend`` for code and tests."""

from __future__ import annotations

import pytest

from abstractvision import VisionManager
from abstractvision.backends import (
    KNOWN_BACKENDS,
    create_backend,
    get_backend_class,
    register_backend,
    unregister_backend,
)
from abstractvision.errors import BackendNotConfiguredError, OptionalDependencyMissingError
from fixtures.fake_backend import RecordingBackend

TARGET = "fixtures.fake_backend:RecordingBackend"


@pytest.fixture
def registered():
    """Names registered by the test, removed afterwards whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        if name in KNOWN_BACKENDS:
            unregister_backend(name)


def test_built_in_backends_are_kept_sorted():
    built_in = [name for name, entry in KNOWN_BACKENDS.items() if entry.backend.startswith("abstractvision.")]
    assert built_in == sorted(built_in) and len(built_in) >= 3


def test_a_registered_backend_is_built_by_name_and_unregistered(registered):
    registered.append("mine")
    register_backend(" Mine ", TARGET, description="in-test backend")
    assert KNOWN_BACKENDS["mine"].description == "in-test backend"
    assert get_backend_class("MINE") is RecordingBackend
    backend = create_backend("mine")
    assert VisionManager(backend=backend).generate_image("a cat", steps=1).data
    register_backend("mine", TARGET, description="in-test backend")  # the same entry again: no-op

    unregister_backend("mine")
    with pytest.raises(BackendNotConfiguredError, match="unknown backend 'mine'; known backends: diffusers"):
        get_backend_class("mine")


@pytest.mark.parametrize("name", ["openai", "huggingface", "stable-diffusion-cpp"])
def test_a_built_in_name_or_alias_cannot_be_taken(name):
    before = dict(KNOWN_BACKENDS)
    with pytest.raises(BackendNotConfiguredError, match=f"the name '{name}' is taken by abstractvision.backends"):
        register_backend(name, TARGET)
    assert KNOWN_BACKENDS == before


def test_a_registered_name_is_not_silently_replaced(registered):
    registered.append("mine")
    register_backend("mine", TARGET)
    with pytest.raises(BackendNotConfiguredError, match="the name 'mine' is taken by fixtures.fake_backend"):
        register_backend("mine", "other.module:OtherBackend")
    assert KNOWN_BACKENDS["mine"].backend == TARGET


@pytest.mark.parametrize(
    ("name", "target", "message"),
    [
        ("mine", "fixtures.fake_backend.RecordingBackend", "target must be a 'module:Class' string"),
        ("mine", ":RecordingBackend", "target must be a 'module:Class' string"),
        ("two words", TARGET, "'two words' is not a backend name"),
        ("  ", TARGET, "is not a backend name"),
        ("a:b", TARGET, "'a:b' is not a backend name"),
    ],
)
def test_a_malformed_registration_is_refused(name, target, message):
    before = dict(KNOWN_BACKENDS)
    with pytest.raises(BackendNotConfiguredError, match=message):
        register_backend(name, target)
    assert KNOWN_BACKENDS == before


def test_a_missing_module_names_the_registered_extra(registered):
    registered.append("ghost")
    register_backend("ghost", "abstractvision_no_such_module:Backend", extra="diffusers")
    with pytest.raises(OptionalDependencyMissingError, match=r'pip install "abstractvision\[diffusers\]"'):
        get_backend_class("ghost")


@pytest.mark.parametrize("name", ["openai", "huggingface"])
def test_built_ins_cannot_be_unregistered(name):
    with pytest.raises(BackendNotConfiguredError, match="is a built-in backend"):
        unregister_backend(name)
    assert "openai" in KNOWN_BACKENDS and "diffusers" in KNOWN_BACKENDS


def test_unregistering_an_unknown_name_lists_the_known_ones():
    with pytest.raises(BackendNotConfiguredError, match="unknown backend 'nobody'"):
        unregister_backend("nobody")
