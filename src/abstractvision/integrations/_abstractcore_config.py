"""AbstractCore owner config (``create_llm(..., vision_*=...)``) -> abstractvision settings.

Why a table: AbstractCore's server and users configure the plugin with ``vision_*`` keys, and
their environment fallbacks (``ABSTRACTCORE_VISION_*``, ``ABSTRACTVISION_*``, ``OPENAI_*``) are
already read by :mod:`abstractvision.config`. Mapping each owner key onto a :class:`Settings`
field and handing it to :func:`load_settings` as an explicit value gives the documented precedence
(owner key > environment > default) without a second environment reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings, load_settings, parse_setting
from ..errors import BackendNotConfiguredError

#: Owner keys that name the backend, in precedence order (``vision_provider`` is an alias).
BACKEND_KEYS: tuple[str, ...] = ("vision_backend", "vision_provider")

#: The backend names AbstractCore sends, as accepted here (aliases of the built-in backends work too).
ACCEPTED_BACKENDS: tuple[str, ...] = ("openai", "openai-compatible", "diffusers", "sdcpp")

#: Values of the backend key that mean "not chosen": pick from the other settings.
_UNSET_BACKENDS = {"", "auto", "default"}

#: owner config key -> Settings field.
OWNER_KEYS: dict[str, str] = {
    "vision_base_url": "base_url",
    "vision_api_key": "api_key",
    "vision_model_id": "model_id",
    "vision_timeout_s": "timeout_s",
    "vision_models_path": "models_path",
    "vision_device": "diffusers_device",
    "vision_torch_dtype": "diffusers_torch_dtype",
    "vision_allow_download": "diffusers_allow_download",
    "vision_sdcpp_bin": "sdcpp_bin",
    "vision_sdcpp_model": "sdcpp_model",
    "vision_sdcpp_diffusion_model": "sdcpp_diffusion_model",
    "vision_sdcpp_vae": "sdcpp_vae",
    "vision_sdcpp_llm": "sdcpp_llm",
    "vision_sdcpp_llm_vision": "sdcpp_llm_vision",
    "vision_sdcpp_clip_l": "sdcpp_clip_l",
    "vision_sdcpp_clip_g": "sdcpp_clip_g",
    "vision_sdcpp_t5xxl": "sdcpp_t5xxl",
    "vision_sdcpp_extra_args": "sdcpp_extra_args",
    "vision_model_dir": "sdcpp_models_dir",
}

#: Backend config field that holds the model, where it is not ``model_id``.
_MODEL_FIELD = {"sdcpp": "model"}

#: Where ``vision_backend="openai"`` goes when no base URL is configured: OpenAI's own API.
OPENAI_API_BASE_URL = "https://api.openai.com/v1"

#: Backends that run on a remote service: nothing of theirs is ever resident in this process.
REMOTE_BACKENDS = frozenset({"openai"})

CONFIG_HINT = (
    "set vision_backend (openai, openai-compatible, diffusers or sdcpp) and its keys "
    "(vision_base_url, vision_api_key, vision_model_id, ...) in create_llm(...), or the environment "
    "variables ABSTRACTVISION_BACKEND, OPENAI_BASE_URL, OPENAI_API_KEY, ABSTRACTVISION_MODEL_ID, ..."
)


@dataclass(frozen=True)
class VisionBackendPlan:
    """Which backend to build and with what: the result of resolving one owner's config."""

    provider: str  # canonical backend name (openai, diffusers, sdcpp, or a plugin backend)
    settings: Settings
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return self.provider in REMOTE_BACKENDS

    @property
    def model(self) -> str | None:
        """The model this plan runs by default (``None``: the backend's own default)."""
        return self.overrides.get(model_field(self.provider)) or _settings_model(self.provider, self.settings)

    def build(self, model: str | None = None):
        """A new backend for this plan, optionally for another ``model``."""
        from ..backends import create_backend

        overrides = dict(self.overrides)
        if model is not None:
            overrides[model_field(self.provider)] = model
        return create_backend(self.provider, self.settings, **overrides)


def model_field(provider: str) -> str:
    return _MODEL_FIELD.get(provider, "model_id")


def _settings_model(provider: str, settings: Settings) -> str | None:
    if provider == "sdcpp":
        return settings.sdcpp_model or settings.sdcpp_diffusion_model
    if provider == "diffusers":
        return settings.model_id or settings.diffusers_model
    return settings.model_id


def _owner_value(config: Mapping[str, Any], key: str) -> Any:
    value = config.get(key)
    if isinstance(value, str):
        value = value.strip()
    return None if value in (None, "") else value


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
    explicit = {
        setting: parse_setting(setting, value, key)
        for key, setting in OWNER_KEYS.items()
        if (value := _owner_value(config, key)) is not None
    }
    backend_key = next((key for key in BACKEND_KEYS if _owner_value(config, key) is not None), None)
    if backend_key is not None:
        explicit["provider"] = str(_owner_value(config, backend_key))
    settings = load_settings(environ, **explicit)
    requested = (settings.provider or "").strip().lower()
    source = backend_key or settings.source("provider").removeprefix("env:")
    chosen = requested not in _UNSET_BACKENDS
    if not chosen:
        requested = "openai-compatible" if settings.base_url else "openai"
        source = "vision_backend"
    provider = _canonical(requested, source)
    overrides = {}
    if provider == "openai" and not settings.base_url:
        if requested != "openai" or not chosen:  # only a user who named OpenAI gets OpenAI's paid API
            raise BackendNotConfiguredError(
                f"{source}={requested!r} needs the service's base URL: set vision_base_url in the owner config "
                "(create_llm(..., vision_base_url='http://host:port/v1')) or ABSTRACTVISION_BASE_URL / "
                "OPENAI_BASE_URL; or set vision_backend='openai' for OpenAI's own API"
            )
        overrides["base_url"] = OPENAI_API_BASE_URL
    if "model_id" in explicit and provider != "sdcpp":
        # An owner's model beats a backend-specific variable (ABSTRACTVISION_DIFFUSERS_MODEL) too.
        overrides[model_field(provider)] = explicit["model_id"]
    return VisionBackendPlan(provider, settings, overrides)


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
    "OPENAI_API_BASE_URL",
    "OWNER_KEYS",
    "REMOTE_BACKENDS",
    "VisionBackendPlan",
    "model_field",
    "owner_config_of",
    "resolve_backend_plan",
]
