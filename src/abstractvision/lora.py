"""LoRA adapters as callers write them, turned into checked :class:`LoRAAdapterSpec` tuples.

Why one module: the same adapter arrives as a ``LoRAAdapterSpec`` (Python), a ``PATH_OR_ID[:SCALE]``
word (the CLI, the REPL), or a JSON object (the server, AbstractCore). Each form is read here into
the one frozen shape, checked once, before any engine loads anything, so every surface refuses the
same bad adapter with the same message naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from .errors import InvalidRequestError
from .types import LoRAAdapterSpec, ProviderAdapterInfo

#: Most adapters one call may stack (engines slow down with each; more is a mistake, not a style).
MAX_ADAPTERS = 8

#: Largest absolute scale: PEFT and sd.cpp take any float, but past this the base model is gone.
MAX_SCALE = 10.0

#: Characters an adapter name may hold: it becomes a PEFT adapter key and part of an sd.cpp prompt tag.
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

#: The JSON keys a mapping may carry (the dataclass's fields).
_KEYS = ("source", "scale", "weight_name", "subfolder", "adapter_name")

#: File endings engines load adapters from; stripped when a name is derived from a file.
ADAPTER_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin", ".gguf")


def parse_lora(text: str, field: str = "lora") -> LoRAAdapterSpec:
    """``PATH_OR_ID[:SCALE]`` (the CLI's ``--lora`` word) as a spec.

    The part after the last ``:`` is a scale only when it reads as a number, so ``C:\\x.safetensors``
    and ``hf-user/repo`` stay whole.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError(f"{field}: expected PATH_OR_ID[:SCALE], got {text!r}", field=field)
    source, sep, tail = text.strip().rpartition(":")
    try:
        scale = float(tail) if sep else None
    except ValueError:
        scale = None
    if scale is None:
        return check_adapter(LoRAAdapterSpec(source=text.strip()), field)
    return check_adapter(LoRAAdapterSpec(source=source, scale=scale), field)


def as_lora_adapters(value: Any, field: str = "lora_adapters") -> tuple[LoRAAdapterSpec, ...]:
    """Any accepted form (``None``, one adapter, or a sequence of specs, mappings or words) as a checked tuple.

    Two adapters with one name are refused: an engine would silently keep only one of them.
    """
    if value is None:
        return ()
    items = [value] if isinstance(value, (str, Mapping, LoRAAdapterSpec)) else value
    if not isinstance(items, Sequence):
        raise InvalidRequestError(f"{field}: expected a list of adapters, got {type(value).__name__}", field=field)
    if len(items) > MAX_ADAPTERS:
        raise InvalidRequestError(
            f"{field}: {len(items)} adapters, over the limit of {MAX_ADAPTERS} per call", field=field
        )
    adapters = tuple(_one(item, f"{field}[{index}]") for index, item in enumerate(items))
    names = [adapter_name(spec) for spec in adapters]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise InvalidRequestError(
                f"{field}[{index}]: a second adapter named {name!r}; give each its own adapter_name", field=field
            )
    return adapters


def adapter_name(spec: LoRAAdapterSpec) -> str:
    """The name an engine knows ``spec`` by: its ``adapter_name``, else one derived from its source.

    Derived names keep the file's stem (``styles/ink.safetensors`` → ``ink``) or the repo's last part,
    with the weight name's stem when one is given, so two files of one repo get two names.
    """
    if spec.adapter_name:
        return spec.adapter_name
    parts = [_stem(spec.source)]
    if spec.weight_name:
        parts.append(_stem(spec.weight_name))
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", "-".join(p for p in parts if p))[:64]
    return name or "lora"


def describe(adapters: Sequence[LoRAAdapterSpec]) -> list[dict[str, Any]]:
    """The adapters as JSON for provenance metadata (what made this picture), unset fields left out."""
    return [{key: getattr(spec, key) for key in _KEYS if getattr(spec, key) is not None} for spec in adapters]


def adapter_files(folder: str | Path | None, suffixes: Sequence[str]) -> list[ProviderAdapterInfo]:
    """The adapter files directly in ``folder`` (a backend's ``lora_dir``), by name: ``id`` is the file
    name without its suffix, what a request names it by. ``[]`` when unset or not a folder.

    Why one listing for every backend: ``GET /v1/adapters``, ``provider-adapters`` and the server's
    allow-list read it, so each backend must list its folder the same way. Suffixes match as written,
    as the backends' lookups append them, so every listed id is one a request can load.
    """
    path = Path(folder).expanduser() if folder else None
    if path is None or not path.is_dir():
        return []
    return [
        ProviderAdapterInfo(
            id=file.stem,
            path=str(file),
            size_bytes=file.stat().st_size,
            raw={"name": file.name, "found_in": "lora_dir"},
        )
        for file in sorted(path.iterdir())
        if file.suffix in suffixes and file.is_file()
    ]


def check_adapter(spec: LoRAAdapterSpec, field: str) -> LoRAAdapterSpec:
    """``spec`` with its scale as a float, after checking every field; refuses naming ``field.part``."""
    source = spec.source
    if not isinstance(source, str) or not source.strip():
        raise InvalidRequestError(f"{field}.source: must be a non-empty string, got {source!r}", field=field)
    if "\x00" in source or len(source) > 4096:
        raise InvalidRequestError(f"{field}.source: not a usable path or repo id", field=field)
    scale = spec.scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise InvalidRequestError(f"{field}.scale: must be a finite number, got {scale!r}", field=field)
    if abs(scale) > MAX_SCALE:
        raise InvalidRequestError(f"{field}.scale: {scale} is outside -{MAX_SCALE}..{MAX_SCALE}", field=field)
    for part in ("weight_name", "subfolder"):
        text = getattr(spec, part)
        if text is not None and not _relative_name(text):
            raise InvalidRequestError(
                f"{field}.{part}: must be a relative file or folder name, got {text!r}", field=field
            )
    if spec.adapter_name is not None and (not isinstance(spec.adapter_name, str) or not _NAME.match(spec.adapter_name)):
        raise InvalidRequestError(
            f"{field}.adapter_name: use 1-64 letters, digits, '_', '.' or '-', got {spec.adapter_name!r}", field=field
        )
    return LoRAAdapterSpec(
        source=source.strip(),
        scale=float(scale),
        weight_name=spec.weight_name,
        subfolder=spec.subfolder,
        adapter_name=spec.adapter_name,
    )


def _one(item: Any, field: str) -> LoRAAdapterSpec:
    if isinstance(item, LoRAAdapterSpec):
        return check_adapter(item, field)
    if isinstance(item, str):
        return parse_lora(item, field)
    if isinstance(item, Mapping):
        unknown = sorted(set(item) - set(_KEYS))
        if unknown:
            raise InvalidRequestError(
                f"{field}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(_KEYS)}", field=field
            )
        if "source" not in item:
            raise InvalidRequestError(f"{field}.source: is required", field=field)
        return check_adapter(LoRAAdapterSpec(**{k: item[k] for k in _KEYS if k in item and item[k] is not None}), field)
    raise InvalidRequestError(
        f"{field}: expected a LoRAAdapterSpec, an object with 'source', or 'PATH_OR_ID[:SCALE]', "
        f"got {type(item).__name__}",
        field=field,
    )


def _relative_name(text: Any) -> bool:
    """A name inside the adapter's folder or repo: not empty, no NUL, not absolute, no ``..``."""
    if not isinstance(text, str) or not text or "\x00" in text:
        return False
    path = PurePath(text)
    return not path.is_absolute() and not text.startswith(("/", "\\")) and ".." not in path.parts


def _stem(text: str) -> str:
    name = PurePath(text.rstrip("/\\")).name or text
    for suffix in ADAPTER_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


__all__ = [
    "ADAPTER_SUFFIXES",
    "MAX_ADAPTERS",
    "MAX_SCALE",
    "adapter_files",
    "adapter_name",
    "as_lora_adapters",
    "check_adapter",
    "describe",
    "parse_lora",
]
