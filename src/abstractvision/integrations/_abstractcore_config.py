"""AbstractCore owner config (``create_llm(..., vision_*=...)``) -> a backend and its settings.

Why no table here: every backend setting declares its environment variables, and its owner key is
derived from them (:attr:`abstractvision.config.DeclaredSetting.owner_key`: ``vision_device`` for
``ABSTRACTCORE_VISION_DEVICE``). An owner key becomes an explicit value of the chosen backend's
setting, read like the variable would be, so the precedence (owner key > environment > default)
is :func:`abstractvision.config.resolve`'s, without a second environment reader or a second map.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import declared_settings, load_settings, resolve
from ..errors import BackendNotConfiguredError

#: Owner keys that name the backend, in precedence order (``vision_provider`` is an alias).
BACKEND_KEYS: tuple[str, ...] = ("vision_backend", "vision_provider")

#: The backend names AbstractCore sends, as accepted here (aliases of the built-in backends work too).
ACCEPTED_BACKENDS: tuple[str, ...] = ("openai", "openai-compatible", "diffusers", "sdcpp")

#: Values of the backend key that mean "not chosen": pick from the other settings.
_UNSET_BACKENDS = {"", "auto", "default"}

#: Backends that run on a remote service: nothing of theirs is ever resident in this process.
REMOTE_BACKENDS = frozenset({"openai"})

CONFIG_HINT = (
    "set vision_backend (openai, openai-compatible, diffusers or sdcpp) and its keys "
    "(vision_base_url, vision_api_key, vision_model_id, ...) in create_llm(...), or the environment "
    "variables ABSTRACTVISION_BACKEND, OPENAI_BASE_URL, OPENAI_API_KEY, ABSTRACTVISION_MODEL_ID, ..."
)


def _config_class(provider: str) -> type | None:
    from ..backends import get_backend_config_class

    return get_backend_config_class(provider)


def owner_keys(provider: str) -> dict[str, Any]:
    """Owner key -> declared setting, for every setting ``provider``'s config declares."""
    config_class = _config_class(provider)
    return {s.owner_key: s for s in declared_settings(config_class)} if config_class is not None else {}


def _owner_value(config: Mapping[str, Any], key: str) -> Any:
    value = config.get(key)
    if isinstance(value, str):
        value = value.strip()
    return None if value in (None, "") else value


@dataclass(frozen=True)
class VisionBackendPlan:
    """Which backend to build and with what: one owner's config over the environment."""

    provider: str  # canonical backend name (openai, diffusers, sdcpp, or a plugin backend)
    owner_config: Mapping[str, Any] = field(default_factory=dict, repr=False)
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def for_provider(self, provider: str) -> VisionBackendPlan:
        """The same owner config and environment, for another backend."""
        return dataclasses.replace(self, provider=provider, overrides={})

    @functools.cached_property
    def resolved(self) -> Any:
        """The backend's settings (``None`` for a backend that declares none)."""
        config_class = _config_class(self.provider)
        if config_class is None:
            return None
        explicit = {
            declared.name: declared.parse(value, key)
            for key, declared in owner_keys(self.provider).items()
            if (value := _owner_value(self.owner_config, key)) is not None
        }
        return resolve(config_class, self.environ, **{**explicit, **self.overrides})

    @property
    def model(self) -> str | None:
        """The model this plan runs by default (``None``: the backend's own default)."""
        name = model_field(self.provider)
        return self.resolved.value(name) if name and self.resolved is not None else None

    def build(self, model: str | None = None):
        """A new backend for this plan, optionally for another ``model``."""
        from ..backends import build_backend

        if model is None or self.resolved is None:
            return build_backend(self.provider, self.resolved)
        name = model_field(self.provider)
        if name is None:
            raise BackendNotConfiguredError(f"the {self.provider} backend has no model setting to choose {model!r}")
        return self.with_overrides({**self.overrides, name: model}).build()

    def with_overrides(self, overrides: Mapping[str, Any]) -> VisionBackendPlan:
        return dataclasses.replace(self, overrides=dict(overrides))


def model_field(provider: str) -> str | None:
    """The setting ``provider``'s ``--model`` flag sets (``model_id``, ``model``)."""
    config_class = _config_class(provider)
    settings = declared_settings(config_class) if config_class is not None else ()
    return next((s.name for s in settings if s.flag == "--model"), None)


def owner_config_of(owner: Any) -> Mapping[str, Any]:
    """The keyword arguments the host was created with (``create_llm(**config)``), or ``{}``."""
    config = getattr(owner, "config", None)
    return config if isinstance(config, Mapping) else {}


def resolve_backend_plan(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> VisionBackendPlan:
    """Resolve owner keys over the environment into a :class:`VisionBackendPlan`.

    Raises :class:`BackendNotConfiguredError` naming the key or variable to fix when the backend
    is unknown or an OpenAI-compatible service has no base URL.
    """
    config = config or {}
    backend_key = next((key for key in BACKEND_KEYS if _owner_value(config, key) is not None), None)
    general = load_settings(environ, provider=_owner_value(config, backend_key) if backend_key else None)
    requested = str(general.provider or "").strip().lower()
    source = backend_key or general.source("provider").removeprefix("env:")
    chosen = requested not in _UNSET_BACKENDS
    if not chosen:
        openai_url = VisionBackendPlan("openai", config, environ).resolved.value("base_url")
        requested, source = ("openai-compatible" if openai_url else "openai"), "vision_backend"
    plan = VisionBackendPlan(_canonical(requested, source), config, environ)
    if plan.provider == "openai" and not plan.resolved.value("base_url"):
        if requested != "openai" or not chosen:  # only a user who named OpenAI gets OpenAI's paid API
            raise BackendNotConfiguredError(
                f"{source}={requested!r} needs the service's base URL: set vision_base_url in the owner config "
                "(create_llm(..., vision_base_url='http://host:port/v1')) or ABSTRACTVISION_BASE_URL / "
                "OPENAI_BASE_URL; or set vision_backend='openai' for OpenAI's own API"
            )
        from ..backends.openai_compatible import OPENAI_API_URL

        plan = plan.with_overrides({"base_url": OPENAI_API_URL})
    return plan


def _canonical(name: str, source: str) -> str:
    from ..backends import canonical_backend_name

    try:
        return canonical_backend_name(name)
    except BackendNotConfiguredError:
        raise BackendNotConfiguredError(
            f"{source}={name!r} is not a vision backend; accepted values: {', '.join(ACCEPTED_BACKENDS)}"
        ) from None


__all__ = [
    "ACCEPTED_BACKENDS",
    "BACKEND_KEYS",
    "CONFIG_HINT",
    "owner_keys",
    "REMOTE_BACKENDS",
    "VisionBackendPlan",
    "model_field",
    "owner_config_of",
    "resolve_backend_plan",
]
