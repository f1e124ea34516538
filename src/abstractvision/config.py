"""Settings: declared once, next to what they configure, and read here, in one place.

A backend's config dataclass declares each of its settings with :func:`setting` (default, the
environment variables read for it, its CLI flag, help, secret or not). Everything else is derived
from those declarations: this module reads the environment for any declared config
(:func:`resolve`), the CLI builds its flags from them, ``abstractvision config`` lists them, the REPL
takes them as ``name=value``, the AbstractCore plugin maps its owner keys onto them, and the docs
table is generated from them. General settings (which backend, where results go) are declared the
same way on :class:`Settings`.

**Precedence, everywhere:** an explicit value (argument, flag, owner key, REPL word) beats the
first of the setting's environment variables that is set and not blank, which beats the default.
``None`` (or a blank secret) counts as "not given".

This is the only module that reads ``os.environ``; it reads it on call, not at import, and tests
pass a plain dict as ``environ``. Every value remembers where it came from (``argument``,
``env:NAME`` or ``default``); secrets and the password of a ``user:password@`` URL are redacted
wherever settings are shown.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


#: Key under which a dataclass field's :class:`SettingSpec` is kept in its ``metadata``.
SPEC_KEY = "abstractvision.setting"

#: Environment-variable prefixes, in the order owner keys are derived from (see :attr:`DeclaredSetting.owner_key`).
_HOST_PREFIX = "ABSTRACTCORE_VISION_"
_OWN_PREFIX = "ABSTRACTVISION_"


@dataclass(frozen=True)
class SettingSpec:
    """What a config field declares about itself (see :func:`setting`)."""

    env: tuple[str, ...]
    help: str
    flag: str | None = None
    secret: bool = False
    url: bool = False
    deprecated_env: tuple[str, ...] = ()


def setting(
    default: Any = None,
    *,
    env: str | tuple[str, ...],
    help: str,
    flag: str | None = None,
    secret: bool = False,
    url: bool = False,
    deprecated_env: tuple[str, ...] = (),
) -> Any:
    """A dataclass field that is a setting: ``env`` variables in precedence order, the CLI ``flag``
    (default ``--field-name``), one line of ``help``. ``secret``: stripped, refused with whitespace
    inside, never shown; ``url``: shown with a ``user:password@`` password masked.
    ``deprecated_env``: older variable names still read, after ``env``, with a warning.
    """
    spec = SettingSpec(
        env=(env,) if isinstance(env, str) else tuple(env),
        help=help,
        flag=flag,
        secret=secret,
        url=url,
        deprecated_env=deprecated_env,
    )
    return field(default=default, repr=not secret, metadata={SPEC_KEY: spec})


_PARSERS: dict[type, Callable[[str, str], Any]] = {bool: _parse_bool, int: _parse_int, float: _parse_float}


@dataclass(frozen=True)
class DeclaredSetting:
    """One declared setting of a config class, with everything derived from its declaration."""

    name: str
    kind: type  # bool, int, float or str: how text (a variable, a flag, an owner key) is read
    default: Any
    spec: SettingSpec

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")

    @property
    def param(self) -> str:
        """The keyword click gives the flag's value (``--sd-cli`` -> ``sd_cli``)."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def owner_key(self) -> str:
        """The AbstractCore owner-config key: ``vision_`` + the host's variable name
        (``ABSTRACTCORE_VISION_DEVICE`` -> ``vision_device``), else our own variable's
        (``ABSTRACTVISION_DIFFUSERS_CACHE_DIR`` -> ``vision_diffusers_cache_dir``), else the field's name."""
        names = self.spec.env + self.spec.deprecated_env
        for prefix in (_HOST_PREFIX, _OWN_PREFIX):
            var = next((var for var in names if var.startswith(prefix)), None)
            if var is not None:
                return "vision_" + var.removeprefix(prefix).lower()
        return "vision_" + self.name

    def parse(self, raw: Any, label: str) -> Any:
        """A value given as text (``"30"``, ``"1"``) read like the variable would be, errors naming ``label``."""
        if self.spec.secret and isinstance(self.default, tuple):  # a list of secrets: a comma list as text
            items = raw.split(",") if isinstance(raw, str) else raw
            return tuple(key for key in (clean_secret(item, label) for item in items) if key)
        if self.spec.secret:
            return clean_secret(raw, label)
        if not isinstance(raw, str):
            return raw
        return _PARSERS.get(self.kind, _parse_str)(raw, label)

    def display(self, value: Any) -> Any:
        if self.spec.secret and isinstance(value, tuple):
            return tuple(redact(item) for item in value)
        if self.spec.secret and value:
            return redact(value)
        if self.spec.url and isinstance(value, str):
            return redact_url(value)
        return value


def _kind(annotation: Any) -> type:
    """``bool``/``int``/``float`` from a field's type (``float | None`` too); anything else is read as text."""
    options = typing.get_args(annotation) or (annotation,)
    return next((option for option in (bool, int, float) if option in options), str)


@functools.cache
def declared_settings(config_class: type) -> tuple[DeclaredSetting, ...]:
    """The settings a config dataclass declares with :func:`setting`, in field order."""
    hints = typing.get_type_hints(config_class)
    return tuple(
        DeclaredSetting(f.name, _kind(hints[f.name]), f.default, f.metadata[SPEC_KEY])
        for f in dataclasses.fields(config_class)
        if SPEC_KEY in f.metadata
    )


@dataclass(frozen=True)
class ResolvedSettings:
    """The declared settings of one config class, resolved: explicit > environment > default.

    ``values`` holds only what was given or found in the environment (defaults stay the config's
    own), ``sources`` where each came from.
    """

    config_class: type
    values: Mapping[str, Any]
    sources: Mapping[str, str]

    def value(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        for declared in declared_settings(self.config_class):
            if declared.name == name:
                return declared.default
        raise KeyError(f"{self.config_class.__name__} declares no setting {name!r}")

    def source(self, name: str) -> str:
        """``argument``, ``env:NAME`` or ``default``."""
        return self.sources.get(name, "default")

    def describe(self) -> list[tuple[str, Any, str]]:
        """(name, display value, source) for every declared setting, secrets redacted."""
        return [
            (s.name, s.display(self.value(s.name)), self.source(s.name)) for s in declared_settings(self.config_class)
        ]

    def build(self) -> Any:
        """The config object: these values over the config's own defaults."""
        return self.config_class(**self.values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value, _ in self.describe() if value is not None)
        return f"ResolvedSettings({self.config_class.__name__}: {shown})"


def resolve(config_class: type, environ: Mapping[str, str] | None = None, **explicit: Any) -> ResolvedSettings:
    """Resolve the declared settings of ``config_class`` (see the module docstring for the rule).

    ``explicit`` may also name undeclared fields of the config (they pass through as arguments);
    unknown names are a ``TypeError``.
    """
    env = os.environ if environ is None else environ
    fields_ = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(explicit) - fields_)
    if unknown:
        raise TypeError(f"unknown setting(s) of {config_class.__name__}: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    declared = {s.name: s for s in declared_settings(config_class)}
    for name, value in explicit.items():
        if name in declared and value is not None:
            value = declared[name].parse(value, name) if declared[name].spec.secret else value
        if value is not None:
            values[name], sources[name] = value, "argument"
    for name, spec in declared.items():
        if name not in values:
            found = _from_environment(spec, env)
            if found is not None:
                values[name], sources[name] = found
    return ResolvedSettings(config_class, values, sources)


def _from_environment(declared: DeclaredSetting, env: Mapping[str, str]) -> tuple[Any, str] | None:
    for var in declared.spec.env + declared.spec.deprecated_env:
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        if var in declared.spec.deprecated_env:
            warnings.warn(f"{var} is deprecated; set {declared.spec.env[0]} instead", FutureWarning, stacklevel=4)
        value = declared.parse(raw, var)
        if value is not None:
            return value, f"env:{var}"
    return None


@dataclass(frozen=True)
class Settings:
    """General settings, not tied to one backend. Build with :func:`load_settings`."""

    provider: str | None = setting(
        env=("ABSTRACTVISION_PROVIDER", "ABSTRACTVISION_BACKEND", "ABSTRACTCORE_VISION_BACKEND"),
        help="Backend: openai, diffusers, sdcpp or a plugin's name.",
    )
    store_dir: str | None = setting(
        env="ABSTRACTVISION_STORE_DIR",
        help="Folder of the content-addressed asset store hosts use (default ~/.abstractvision/assets).",
    )
    model_capabilities_path: str | None = setting(
        env="ABSTRACTVISION_MODEL_CAPABILITIES_PATH", help="A capability registry JSON file to use instead of ours."
    )

    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def source(self, name: str) -> str:
        """``argument``, ``env:NAME`` or ``default``."""
        return self.sources.get(name, "default")

    def describe(self) -> list[tuple[str, Any, str]]:
        """(name, display value, source) for every general setting."""
        return ResolvedSettings(
            Settings, {s.name: getattr(self, s.name) for s in declared_settings(Settings)}, self.sources
        ).describe()


def redact(secret: str) -> str:
    """Show that a secret is set without showing it (``sk-...abcd`` style is still too much)."""
    return "***" if secret else secret


def inherited_environment_bytes() -> int:
    """Bytes this process's environment takes in a child's argument block (``KEY=VALUE\\0`` and a pointer each).

    Why here: a child process (sd-cli) inherits the environment, and it counts against the same
    ``ARG_MAX`` as the command line; this module is the one that reads the environment.
    """
    return sum(len(key) + len(value) + 2 + 8 for key, value in os.environb.items())


def load_settings(environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
    """The general :class:`Settings`, from the environment (``os.environ`` unless given) under ``explicit``."""
    resolved = resolve(Settings, environ, **explicit)
    return Settings(**resolved.values, sources=resolved.sources)


__all__ = [
    "DeclaredSetting",
    "ResolvedSettings",
    "SPEC_KEY",
    "Settings",
    "SettingSpec",
    "clean_secret",
    "declared_settings",
    "inherited_environment_bytes",
    "load_settings",
    "redact",
    "resolve",
    "setting",
]
