"""The public names existing users import, and the promise that importing them is light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import abstractvision


def test_upstream_style_imports():
    from abstractvision import (  # noqa: F401
        LocalAssetStore,
        RuntimeArtifactStoreAdapter,
        VisionManager,
        VisionModelCapabilitiesRegistry,
        is_artifact_ref,
    )
    from abstractvision.backends import VisionBackend  # noqa: F401
    from abstractvision.backends.base_backend import VisionBackend as Same
    from abstractvision.errors import (  # noqa: F401
        AbstractVisionError,
        BackendNotConfiguredError,
        CapabilityNotSupportedError,
        OptionalDependencyMissingError,
        UnknownModelError,
    )
    from abstractvision.types import (  # noqa: F401
        GeneratedAsset,
        ImageEditRequest,
        ImageGenerationRequest,
        ImageToVideoRequest,
        MultiAngleRequest,
        ProviderModelInfo,
        VideoGenerationRequest,
        VisionBackendCapabilities,
    )

    assert VisionBackend is Same


def test_every_exported_name_resolves():
    for name in abstractvision.__all__:
        assert getattr(abstractvision, name) is not None, name
    with pytest.raises(AttributeError):
        abstractvision.NoSuchThing  # noqa: B018


def test_every_error_is_an_abstractvision_error():
    from abstractvision import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.AbstractVisionError), name
    assert issubclass(errors.InvalidRequestError, ValueError)
    assert issubclass(errors.RequestTimeoutError, TimeoutError)


#: Engines and libraries the base import must not pay for; pytest too (only the contract module needs it).
HEAVY = ("torch", "diffusers", "numpy", "PIL", "httpx", "rich", "stable_diffusion_cpp", "transformers", "pytest")


@pytest.mark.parametrize(
    "statement",
    [
        "import abstractvision",
        "from abstractvision import VisionManager, LocalAssetStore, VisionModelCapabilitiesRegistry",
        "from abstractvision.backends import VisionBackend",
        "import abstractvision.cli",
        "from abstractvision.testing import build_tiny_pipeline",
    ],
)
def test_import_loads_no_heavy_module(statement):
    code = f"{statement}; import sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "abstractvision", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and abstractvision.__version__ in out.stdout
