"""Backend registry: a name -> ``"module:Class"`` table, imported on first use.

Why a table of strings: importing a backend may pull in torch or a C extension, and neither
``import abstractvision`` nor ``abstractvision --help`` may pay for that. Third-party packages add
backends through the entry point group ``abstractvision.backends`` (``name = "pkg.mod:Class"``);
those are read on the first lookup, not at import. Code adds one at run time with
:func:`register_backend` (and tests take it away again with :func:`unregister_backend`).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BackendNotConfiguredError, OptionalDependencyMissingError
from .base_backend import VisionBackend

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .huggingface_diffusers import HuggingFaceDiffusersBackendConfig, HuggingFaceDiffusersVisionBackend
    from .openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
    from .stable_diffusion_cpp import StableDiffusionCppBackendConfig, StableDiffusionCppVisionBackend


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives and what to install when its import fails."""

    backend: str  # "module:Class"
    extra: str | None  # pip extra, None when the base install is enough
    description: str


#: Built-in backends, kept sorted by name (asserted in the tests).
KNOWN_BACKENDS: dict[str, BackendEntry] = {
    "diffusers": BackendEntry(
        "abstractvision.backends.huggingface_diffusers:HuggingFaceDiffusersVisionBackend",
        "diffusers",
        "local Hugging Face Diffusers pipelines",
    ),
    "openai": BackendEntry(
        "abstractvision.backends.openai_compatible:OpenAICompatibleVisionBackend",
        None,
        "OpenAI's Images/Videos API or any OpenAI-compatible HTTP service",
    ),
    "sdcpp": BackendEntry(
        "abstractvision.backends.stable_diffusion_cpp:StableDiffusionCppVisionBackend",
        "sdcpp",
        "local stable-diffusion.cpp (sd-cli executable or Python bindings)",
    ),
}

#: Names that ``unregister_backend`` refuses to remove.
_BUILT_IN = frozenset(KNOWN_BACKENDS)

_ALIASES = {
    "openai-compatible": "openai",
    "openai_compatible": "openai",
    "huggingface": "diffusers",
    "stable-diffusion-cpp": "sdcpp",
    "stable_diffusion_cpp": "sdcpp",
}

_EXPORTS = {
    "OpenAICompatibleBackendConfig": "openai_compatible",
    "OpenAICompatibleVisionBackend": "openai_compatible",
    "HuggingFaceDiffusersBackendConfig": "huggingface_diffusers",
    "HuggingFaceDiffusersVisionBackend": "huggingface_diffusers",
    "StableDiffusionCppBackendConfig": "stable_diffusion_cpp",
    "StableDiffusionCppVisionBackend": "stable_diffusion_cpp",
}

_entry_points_loaded = False


def _load_entry_points() -> None:
    """Join third-party backends to the table, once, on the first lookup."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="abstractvision.backends"):
        KNOWN_BACKENDS.setdefault(ep.name, BackendEntry(ep.value, None, f"plugin backend from {ep.value}"))


def register_backend(
    name: str,
    target: str,
    *,
    extra: str | None = None,
    description: str = "",
) -> None:
    """Add a backend to the table under ``name``, as an entry point would, without installing a package.

    ``target`` is a ``"module:Class"`` string, imported on first use like the built-in backends (its
    settings come with it: the class's ``config_class``); ``extra`` is the abstractvision pip
    extra to name when that import fails. Registering the same entry again is a no-op; a name that is
    taken (a built-in, an alias, another registration or an entry point) raises
    :class:`BackendNotConfiguredError`. Tests pair it with :func:`unregister_backend`.
    """
    key = name.strip().lower()
    if not _is_target(target):
        raise BackendNotConfiguredError(f"register_backend: target must be a 'module:Class' string, got {target!r}")
    if not key or any(char.isspace() or char == ":" for char in key):
        raise BackendNotConfiguredError(f"register_backend: {name!r} is not a backend name (one word, no ':')")
    _load_entry_points()  # so a name an installed plugin already uses is seen as taken
    entry = BackendEntry(target, extra, description or f"backend {target}")
    if key in _ALIASES or KNOWN_BACKENDS.get(key, entry) != entry:
        taken = KNOWN_BACKENDS.get(_ALIASES.get(key, key))
        raise BackendNotConfiguredError(
            f"register_backend: the name {key!r} is taken by {taken.backend if taken else 'an alias'}; "
            "choose another name (or unregister_backend it first)"
        )
    KNOWN_BACKENDS[key] = entry


def unregister_backend(name: str) -> None:
    """Remove a backend added by :func:`register_backend` (or an entry point); built-ins stay."""
    key = canonical_backend_name(name)
    if key in _BUILT_IN:
        raise BackendNotConfiguredError(f"unregister_backend: {key!r} is a built-in backend and cannot be removed")
    del KNOWN_BACKENDS[key]


def _is_target(value: object) -> bool:
    module, colon, attr = value.partition(":") if isinstance(value, str) else ("", "", "")
    return bool(colon and module.strip() and attr.strip())


def canonical_backend_name(name: str) -> str:
    """Resolve aliases and reject unknown names with the list of known ones."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in KNOWN_BACKENDS:
        _load_entry_points()
    if key not in KNOWN_BACKENDS:
        known = ", ".join(sorted(KNOWN_BACKENDS))
        raise BackendNotConfiguredError(f"unknown backend {name!r}; known backends: {known}")
    return key


@contextlib.contextmanager
def optional_dependency(extra: str, needed_by: str) -> Iterator[None]:
    """The one guard around imports of an optional stack: an import that fails inside the block
    becomes :class:`OptionalDependencyMissingError` naming the package and the pip line of ``extra``.

    Why one guard: a bare ``ModuleNotFoundError: No module named 'huggingface_hub'`` does not say
    which extra brings it; every import of torch, diffusers, transformers, huggingface_hub, ...
    goes through here so the user always gets ``pip install "abstractvision[<extra>]"``.
    """
    try:
        yield
    except OptionalDependencyMissingError:
        raise
    except ImportError as exc:
        what = exc.name or f"an optional dependency ({exc})"
        raise OptionalDependencyMissingError(
            f'{needed_by} needs {what}; install it with: pip install "abstractvision[{extra}]"',
            extra=extra,
            package=exc.name,
        ) from exc


def _import(target: str, extra: str | None) -> Any:
    module_name, _, attr = target.partition(":")
    if extra is None:
        module = importlib.import_module(module_name)
    else:
        with optional_dependency(extra, target):
            module = importlib.import_module(module_name)
    return getattr(module, attr)


def get_backend_class(name: str) -> type[VisionBackend]:
    """The backend class registered under ``name`` (imported now, not before)."""
    entry = KNOWN_BACKENDS[canonical_backend_name(name)]
    return _import(entry.backend, entry.extra)


def get_backend_config_class(name: str) -> type | None:
    """The settings dataclass of the backend registered under ``name`` (its ``config_class``)."""
    return get_backend_class(name).config_class


def create_backend(name: str, environ: Mapping[str, str] | None = None, **overrides: Any) -> VisionBackend:
    """Build a backend by name: ``overrides`` (fields of its config; ``None`` = not given) over the
    environment (the process's unless ``environ`` is given) over the defaults, by
    :func:`abstractvision.config.resolve`, so every caller gets the same precedence."""
    config_class = get_backend_config_class(name)
    if config_class is None:
        if any(value is not None for value in overrides.values()):
            raise TypeError(f"the {name} backend declares no settings; got {', '.join(sorted(overrides))}")
        return build_backend(name, None)
    from ..config import resolve

    return build_backend(name, resolve(config_class, environ, **overrides))


def build_backend(name: str, resolved: Any) -> VisionBackend:
    """The backend ``name`` over already resolved settings (``None`` for a backend without any)."""
    backend_class = get_backend_class(name)
    return backend_class() if resolved is None else backend_class(config=resolved.build())


def backend_config_classes() -> dict[str, type]:
    """Every known backend (plugins included) that declares settings -> its config class.

    Imports the backend modules (cheap: engines load on first use). A plugin whose module fails to
    import is left out here; selecting it still reports the failure.
    """
    _load_entry_points()
    classes: dict[str, type] = {}
    for name, entry in KNOWN_BACKENDS.items():
        try:
            config_class = get_backend_config_class(name)
        except Exception:
            if entry.backend.startswith("abstractvision."):
                raise
            continue
        if config_class is not None:
            classes[name] = config_class
    return classes


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BackendEntry",
    "HuggingFaceDiffusersBackendConfig",
    "HuggingFaceDiffusersVisionBackend",
    "KNOWN_BACKENDS",
    "OpenAICompatibleBackendConfig",
    "OpenAICompatibleVisionBackend",
    "StableDiffusionCppBackendConfig",
    "StableDiffusionCppVisionBackend",
    "VisionBackend",
    "backend_config_classes",
    "build_backend",
    "canonical_backend_name",
    "create_backend",
    "get_backend_class",
    "get_backend_config_class",
    "optional_dependency",
    "register_backend",
    "unregister_backend",
]
