"""AbstractCore capability plugin: entry point ``abstractcore.capabilities_plugins``.

AbstractCore loads this module while it discovers plugins, for every host that touches
``llm.vision`` or the capability tools, so it must stay free of heavy imports: it only registers
factories and tools; the backend (and whatever engine it needs) is built when AbstractCore first
asks for the vision capability, from the owner's ``vision_*`` config over the environment.
"""

from __future__ import annotations

from typing import Any

#: backend id -> (priority, description). The alias ranks lower so the primary id is the default.
VISION_BACKENDS: dict[str, tuple[int, str]] = {
    "abstractvision:openai": (
        100,
        "abstractvision: images and videos through OpenAI-compatible services, Diffusers or stable-diffusion.cpp",
    ),
    "abstractvision:openai-compatible": (
        90,
        "abstractvision (alias of abstractvision:openai): the same backends under the OpenAI-compatible name",
    ),
}

INSTALL_HINT = (
    'pip install abstractvision (local engines: pip install "abstractvision[diffusers]" or "abstractvision[sdcpp]")'
)


def register(registry: Any) -> None:
    """Register the vision backends, then the agent tools; one failing does not lose the other.

    The first failure is raised after both were attempted, so AbstractCore records it in
    ``status()["plugin_errors"]``.
    """
    errors: list[Exception] = []
    for step in (_register_backends, _register_tools):
        try:
            step(registry)
        except Exception as exc:  # noqa: BLE001 - reported below, after the other step ran
            errors.append(exc)
    if errors:
        raise errors[0]


def _register_backends(registry: Any) -> None:
    from ._abstractcore_config import CONFIG_HINT
    from .abstractcore import vision_capability_factory

    for backend_id, (priority, description) in VISION_BACKENDS.items():
        registry.register_vision_backend(
            backend_id=backend_id,
            factory=vision_capability_factory(backend_id),
            priority=priority,
            description=description,
            install_hint=INSTALL_HINT,
            config_hint=CONFIG_HINT,
        )


def _register_tools(registry: Any) -> None:
    from ._abstractcore_tools import make_vision_tools

    registry.register_capability_tools("vision", make_vision_tools())


__all__ = ["INSTALL_HINT", "VISION_BACKENDS", "register"]
