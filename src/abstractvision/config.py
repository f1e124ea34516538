"""Environment -> settings, in one place.

This is the only module that reads ``os.environ``. Precedence everywhere is
*explicit argument > environment variable > default*: callers pass their explicit values to
:func:`load_settings` (or override fields of the result) and everything else comes from here.
The environment is read on call, not at import, and tests pass a plain dict as ``environ``.

Every setting remembers where its value came from (``argument``, ``env:NAME`` or ``default``) so
the CLI can show it; secrets (and the password of a ``user:password@`` URL) are redacted in
``repr`` and in :meth:`Settings.describe`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import BackendNotConfiguredError
from .redaction import redact_url

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(raw: str, var: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BackendNotConfiguredError(f"{var}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def _parse_number(kind: Callable[[str], Any], label: str) -> Callable[[str, str], Any]:
    def parse(raw: str, var: str) -> Any:
        try:
            value = kind(raw.strip())
        except ValueError:
            raise BackendNotConfiguredError(f"{var}={raw!r} is not {label}") from None
        if value < 0:
            raise BackendNotConfiguredError(f"{var}={raw!r} must not be negative")
        return value

    return parse


def _parse_str(raw: str, var: str) -> str | None:
    return raw.strip() or None


def clean_secret(value: Any, name: str) -> str | None:
    """``value`` without surrounding whitespace (``None`` when nothing is left); a key with
    whitespace, a control character or a non-ASCII character *inside* it is refused.

    Why: a key pasted with its trailing newline fails every request with a 401 that does not say
    why, and one with a line break inside could smuggle a header. The message never shows the value.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise BackendNotConfiguredError(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if any(not "!" <= char <= "~" for char in value):
        raise BackendNotConfiguredError(
            f"{name} has whitespace, a control character or a non-ASCII character inside it "
            "(a pasted line break?); check the key (it is not shown here)"
        )
    return value or None


_parse_float = _parse_number(float, "a number")
_parse_int = _parse_number(int, "an integer")


def _setting(
    *env: str,
    default: Any = None,
    parse: Callable[[str, str], Any] = _parse_str,
    secret: bool = False,
    url: bool = False,
):
    """A setting read from ``env`` (first set wins). ``secret``: never shown; ``url``: shown with
    the password of a ``user:password@`` part masked."""
    if secret:
        parse = clean_secret
    return field(default=default, metadata={"env": env, "parse": parse, "secret": secret, "url": url})


@dataclass(frozen=True)
class Settings:
    """Effective settings. Build with :func:`load_settings`; ``sources`` says where each came from."""

    # which backend to use when none is given (CLI, AbstractCore plugin)
    provider: str | None = _setting("ABSTRACTVISION_PROVIDER", "ABSTRACTVISION_BACKEND", "ABSTRACTCORE_VISION_BACKEND")
    model_id: str | None = _setting(
        "ABSTRACTVISION_MODEL_ID", "ABSTRACTCORE_VISION_MODEL_ID", "ABSTRACTCORE_VISION_UPSTREAM_MODEL_ID"
    )
    store_dir: str | None = _setting("ABSTRACTVISION_STORE_DIR")
    model_capabilities_path: str | None = _setting("ABSTRACTVISION_MODEL_CAPABILITIES_PATH")

    # OpenAI-compatible HTTP services
    base_url: str | None = _setting(
        "ABSTRACTVISION_BASE_URL", "ABSTRACTCORE_VISION_BASE_URL", "OPENAI_BASE_URL", url=True
    )
    api_key: str | None = _setting(
        "ABSTRACTVISION_API_KEY", "ABSTRACTCORE_VISION_API_KEY", "OPENAI_API_KEY", secret=True
    )
    organization: str | None = _setting("OPENAI_ORG_ID", "OPENAI_ORGANIZATION")
    project: str | None = _setting("OPENAI_PROJECT_ID", "OPENAI_PROJECT")
    timeout_s: float = _setting(
        "ABSTRACTVISION_TIMEOUT_S", "ABSTRACTCORE_VISION_TIMEOUT_S", default=300.0, parse=_parse_float
    )
    max_retries: int = _setting("ABSTRACTVISION_MAX_RETRIES", default=2, parse=_parse_int)
    models_path: str | None = _setting("ABSTRACTVISION_MODELS_PATH", "ABSTRACTCORE_VISION_MODELS_PATH")
    text_to_video_path: str | None = _setting("ABSTRACTVISION_TEXT_TO_VIDEO_PATH")
    image_to_video_path: str | None = _setting("ABSTRACTVISION_IMAGE_TO_VIDEO_PATH")
    image_to_video_mode: str | None = _setting("ABSTRACTVISION_IMAGE_TO_VIDEO_MODE")

    # Hugging Face Diffusers
    diffusers_model: str | None = _setting("ABSTRACTVISION_DIFFUSERS_MODEL", "ABSTRACTVISION_DIFFUSERS_MODEL_ID")
    diffusers_device: str = _setting("ABSTRACTVISION_DIFFUSERS_DEVICE", "ABSTRACTCORE_VISION_DEVICE", default="auto")
    diffusers_torch_dtype: str = _setting(
        "ABSTRACTVISION_DIFFUSERS_TORCH_DTYPE", "ABSTRACTCORE_VISION_TORCH_DTYPE", default="auto"
    )
    diffusers_allow_download: bool = _setting(
        "ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD",
        "ABSTRACTCORE_VISION_ALLOW_DOWNLOAD",
        default=False,
        parse=_parse_bool,
    )
    diffusers_cache_dir: str | None = _setting("ABSTRACTVISION_DIFFUSERS_CACHE_DIR")

    # stable-diffusion.cpp
    sdcpp_bin: str = _setting(
        "ABSTRACTVISION_SDCPP_BIN", "ABSTRACTVISION_SDCPP_CLI", "ABSTRACTCORE_VISION_SDCPP_BIN", default="sd-cli"
    )
    sdcpp_mode: str = _setting("ABSTRACTVISION_SDCPP_MODE", default="auto")
    sdcpp_model: str | None = _setting("ABSTRACTVISION_SDCPP_MODEL", "ABSTRACTCORE_VISION_SDCPP_MODEL")
    sdcpp_diffusion_model: str | None = _setting(
        "ABSTRACTVISION_SDCPP_DIFFUSION_MODEL", "ABSTRACTCORE_VISION_SDCPP_DIFFUSION_MODEL"
    )
    sdcpp_vae: str | None = _setting("ABSTRACTVISION_SDCPP_VAE", "ABSTRACTCORE_VISION_SDCPP_VAE")
    sdcpp_llm: str | None = _setting("ABSTRACTVISION_SDCPP_LLM", "ABSTRACTCORE_VISION_SDCPP_LLM")
    sdcpp_llm_vision: str | None = _setting("ABSTRACTVISION_SDCPP_LLM_VISION", "ABSTRACTCORE_VISION_SDCPP_LLM_VISION")
    sdcpp_clip_l: str | None = _setting("ABSTRACTVISION_SDCPP_CLIP_L", "ABSTRACTCORE_VISION_SDCPP_CLIP_L")
    sdcpp_clip_g: str | None = _setting("ABSTRACTVISION_SDCPP_CLIP_G", "ABSTRACTCORE_VISION_SDCPP_CLIP_G")
    sdcpp_t5xxl: str | None = _setting("ABSTRACTVISION_SDCPP_T5XXL", "ABSTRACTCORE_VISION_SDCPP_T5XXL")
    sdcpp_extra_args: str | None = _setting("ABSTRACTVISION_SDCPP_EXTRA_ARGS", "ABSTRACTCORE_VISION_SDCPP_EXTRA_ARGS")
    sdcpp_timeout_s: float | None = _setting("ABSTRACTVISION_SDCPP_TIMEOUT_S", parse=_parse_float)
    sdcpp_models_dir: str | None = _setting(
        "ABSTRACTVISION_SDCPP_MODELS_DIR", "ABSTRACTVISION_MODEL_DIR", "ABSTRACTCORE_VISION_MODEL_DIR"
    )

    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, name: str) -> str:
        """``argument``, ``env:NAME`` or ``default``."""
        return self.sources.get(name, "default")

    def describe(self) -> list[tuple[str, Any, str]]:
        """(name, display value, source) for every setting, secrets redacted."""
        return [(f.name, _display(self, f), self.source(f.name)) for f in _setting_fields()]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value, _ in self.describe() if value is not None)
        return f"Settings({shown})"


def _setting_fields():
    return [f for f in fields(Settings) if "env" in f.metadata]


def _display(settings: Settings, f: Any) -> Any:
    value = getattr(settings, f.name)
    if f.metadata["secret"] and value:
        return redact(value)
    if f.metadata["url"] and isinstance(value, str):
        return redact_url(value)
    return value


def redact(secret: str) -> str:
    """Show that a secret is set without showing it (``sk-...abcd`` style is still too much)."""
    return "***" if secret else secret


def env_var_names() -> dict[str, tuple[str, ...]]:
    """setting name -> the environment variables read for it, in precedence order (for docs/CLI)."""
    return {f.name: f.metadata["env"] for f in _setting_fields()}


def parse_setting(name: str, raw: Any, label: str) -> Any:
    """Parse a setting that arrived as text from somewhere other than the environment.

    Why: host frameworks (AbstractCore's server) hand over their config keys as env-shaped strings
    (``"30"``, ``"1"``); they must be parsed exactly like the variable would be, with errors that
    name the host's key (``label``). Non-string values are returned unchanged.
    """
    f = {f.name: f for f in _setting_fields()}[name]
    return f.metadata["parse"](raw, label) if isinstance(raw, str) else raw


def inherited_environment_bytes() -> int:
    """Bytes this process's environment takes in a child's argument block (``KEY=VALUE\\0`` and a pointer each).

    Why here: a child process (sd-cli) inherits the environment, and it counts against the same
    ``ARG_MAX`` as the command line; this module is the one that reads the environment.
    """
    return sum(len(key) + len(value) + 2 + 8 for key, value in os.environb.items())


def load_settings(environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
    """Read the environment (``os.environ`` unless given) under the explicit values.

    ``explicit`` values that are ``None`` count as "not given", so callers can forward optional
    arguments and flags unchanged.
    """
    env = os.environ if environ is None else environ
    known = {f.name: f for f in _setting_fields()}
    unknown = sorted(set(explicit) - set(known))
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, f in known.items():
        value = explicit.get(name)
        if value is not None and f.metadata["secret"]:
            value = clean_secret(value, name)  # a blank key counts as not given, like a blank variable
        if value is not None:
            values[name], sources[name] = value, "argument"
            continue
        for var in f.metadata["env"]:
            raw = env.get(var)
            if raw is not None and raw.strip() != "":
                values[name], sources[name] = f.metadata["parse"](raw, var), f"env:{var}"
                break
    return Settings(**values, sources=sources)


__all__ = [
    "Settings",
    "clean_secret",
    "env_var_names",
    "inherited_environment_bytes",
    "load_settings",
    "parse_setting",
    "redact",
]
