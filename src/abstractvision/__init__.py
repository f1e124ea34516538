"""abstractvision: one small API for generative vision over pluggable backends.

Everything here is exported lazily: ``import abstractvision`` loads no engine, no HTTP client and
no image library, so that scripts and the CLI start fast. Names are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors as _errors  # tiny and dependency-free: its names are listed once, in errors.__all__

__version__ = "0.4.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "VisionManager": "vision_manager",
    "VisionModelCapabilitiesRegistry": "model_capabilities",
    "LocalAssetStore": "artifacts",
    "RuntimeArtifactStoreAdapter": "artifacts",
    "MediaStore": "artifacts",
    "is_artifact_ref": "artifacts",
    "load_settings": "config",
    "ProgressReporter": "progress",
    "VisionBackend": "backends.base_backend",
    **{
        name: "types"
        for name in (
            "GeneratedAsset",
            "ImageEditRequest",
            "ImageGenerationRequest",
            "ImageToVideoRequest",
            "ImageUpscaleRequest",
            "LoRAAdapterSpec",
            "MultiAngleRequest",
            "ProgressEvent",
            "ProviderAdapterInfo",
            "ProviderModelInfo",
            "VideoGenerationRequest",
            "VisionBackendCapabilities",
            "TASKS",
        )
    },
    **{name: "errors" for name in _errors.__all__},
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # pragma: no cover
    from .artifacts import LocalAssetStore, MediaStore, RuntimeArtifactStoreAdapter, is_artifact_ref
    from .backends.base_backend import VisionBackend
    from .config import load_settings
    from .errors import *  # noqa: F403
    from .model_capabilities import VisionModelCapabilitiesRegistry
    from .progress import ProgressReporter
    from .types import *  # noqa: F403
    from .vision_manager import VisionManager


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'abstractvision' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
