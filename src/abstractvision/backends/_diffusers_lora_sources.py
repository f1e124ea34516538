"""Where LoRA adapters' weights are: a request's adapter sources found as files, and the adapters
on this machine listed.

Why apart from the pipeline code: finding runs before the pipeline is touched, so a missing
adapter fails before any load or denoising step; listing must never import torch or reach the
network. Neither needs a pipeline. Only the hub download (``allow_download``) leaves the machine.

A source is, in this order:

1. a name in ``lora_dir``: ``ink`` is ``<lora_dir>/ink`` or ``<lora_dir>/ink.safetensors``;
2. a local ``.safetensors`` file, or a folder in the Diffusers LoRA layout (``weight_name`` picks
   the file; by default ``pytorch_lora_weights.safetensors``, or the folder's only ``.safetensors``);
3. a Hugging Face repo id, from the local hub cache like models; downloaded only with ``allow_download``.

Only ``.safetensors`` files load: a pickled ``.bin``/``.ckpt`` can run code when read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from ..errors import AdapterNotAvailableError, InvalidRequestError
from ..lora import adapter_files, adapter_name
from ..types import LoRAAdapterSpec, ProviderAdapterInfo
from . import optional_dependency
from ._diffusers_catalog import cached_repos, cached_snapshot

#: Where the adapter folder comes from, for messages about it.
LORA_DIR_SETTING = "lora_dir= / --lora-dir / ABSTRACTVISION_DIFFUSERS_LORA_DIR"

#: How to let the hub download, for messages.
_ALLOW_DOWNLOAD = "allow_download=True, --allow-download, or ABSTRACTVISION_DIFFUSERS_ALLOW_DOWNLOAD=1"

#: The file Diffusers' ``save_lora_weights`` writes, and looks for first.
DEFAULT_WEIGHT_NAME = "pytorch_lora_weights.safetensors"

_SUFFIX = ".safetensors"

#: What :func:`optional_dependency` names as needing the ``diffusers`` extra.
_NEEDED_BY = "LoRA adapters on the diffusers backend"


@dataclass(frozen=True)
class AdapterFile:
    """One adapter of a request, found: the file to load, and what identifies its weights."""

    spec: LoRAAdapterSpec
    field: str  # "lora_adapters[0]": where the request named it, for errors
    path: Path  # the .safetensors file as found (a hub snapshot's link keeps the file's name)
    key: str  # the real file behind ``path``: two sources naming one file share one loaded adapter
    version: tuple[int, int]  # (mtime_ns, size): a file replaced on disk is loaded again
    name: str  # the adapter name PEFT gets (letters, digits, '_' and '-': PEFT refuses '.')


def resolve_adapters(specs: Sequence[LoRAAdapterSpec], config: Any) -> tuple[AdapterFile, ...]:
    """The files of ``specs`` (``config``: the backend's ``lora_dir``, ``cache_dir``, ``allow_download``).

    Raises :class:`AdapterNotAvailableError` naming the adapter and the fix when one is not there,
    :class:`InvalidRequestError` for a source that cannot be an adapter, and
    :class:`OptionalDependencyMissingError` without peft (Diffusers loads LoRA through it).
    """
    if not specs:
        return ()
    with optional_dependency("diffusers", _NEEDED_BY):
        import peft  # noqa: F401

    found = tuple(_resolve(spec, f"lora_adapters[{index}]", config) for index, spec in enumerate(specs))
    keys = [adapter.key for adapter in found]
    for index, adapter in enumerate(found):
        if adapter.key in keys[:index]:
            first = keys.index(adapter.key)
            raise InvalidRequestError(
                f"{adapter.field}: {adapter.spec.source!r} is the same file as lora_adapters[{first}] "
                f"({adapter.path}); give it once, with the scale you want",
                field=adapter.field,
            )
    return found


def list_adapters(config: Any) -> list[ProviderAdapterInfo]:
    """The ``.safetensors`` files in ``lora_dir``, then the LoRA files of repos in the hub cache.

    A cached repo counts when its snapshot holds ``pytorch_lora_weights.safetensors`` or another
    ``*lora*.safetensors`` file (pipelines, with a ``model_index.json``, are models, not adapters).
    Reads files only.
    """
    found = adapter_files(config.lora_dir, (_SUFFIX,))
    for repo_id, snapshot in cached_repos(config.cache_dir):
        if (snapshot / "model_index.json").is_file():
            continue
        for file in sorted(snapshot.rglob("*" + _SUFFIX)):
            if file.name != DEFAULT_WEIGHT_NAME and "lora" not in file.name.lower():
                continue
            if not file.is_file():  # a link to a blob an interrupted download never wrote
                continue
            relative = file.relative_to(snapshot).as_posix()
            found.append(
                ProviderAdapterInfo(
                    id=repo_id,
                    path=str(file),
                    weight_name=None if relative == DEFAULT_WEIGHT_NAME else relative,
                    size_bytes=file.stat().st_size,
                    raw={"found_in": "hf_cache", "snapshot": str(snapshot)},
                )
            )
    return found


def _resolve(spec: LoRAAdapterSpec, field: str, config: Any) -> AdapterFile:
    source = spec.source
    path = _in_lora_dir(source, config.lora_dir) or Path(source).expanduser()
    if path.exists():
        file = _local_file(path, spec, field)
    elif _looks_like_repo(source):
        file = _hub_file(spec, field, config)
    else:
        raise AdapterNotAvailableError(_not_found(source, config.lora_dir), adapter=source)
    stat = file.stat()
    name = re.sub(r"[^A-Za-z0-9_-]", "_", adapter_name(spec))
    return AdapterFile(spec, field, file, str(file.resolve()), (stat.st_mtime_ns, stat.st_size), name)


def _in_lora_dir(name: str, lora_dir: str | None) -> Path | None:
    """``<lora_dir>/<name>`` or ``<lora_dir>/<name>.safetensors`` for a plain name (no folders in it)."""
    if not lora_dir or PurePath(name).name != name or name in (".", ".."):
        return None
    folder = Path(lora_dir).expanduser()
    for candidate in (folder / name, folder / (name + _SUFFIX)):
        if candidate.exists():
            return candidate
    return None


def _looks_like_repo(source: str) -> bool:
    return source.count("/") == 1 and not source.startswith((".", "/", "~")) and not source.endswith(_SUFFIX)


def _local_file(path: Path, spec: LoRAAdapterSpec, field: str) -> Path:
    if path.is_dir():
        return _pick(path / spec.subfolder if spec.subfolder else path, spec, field)
    if spec.weight_name or spec.subfolder:
        raise InvalidRequestError(
            f"{field}: weight_name and subfolder pick a file inside a folder or repo, and {spec.source!r} is a file",
            field=field,
        )
    _check_suffix(path.name, spec, field)
    return path


def _pick(folder: Path, spec: LoRAAdapterSpec, field: str) -> Path:
    """The adapter file in ``folder``: ``weight_name``, else the default name, else its only ``.safetensors``."""
    if spec.weight_name:
        _check_suffix(spec.weight_name, spec, f"{field}.weight_name")
        file = folder / spec.weight_name
        if not file.is_file():
            raise AdapterNotAvailableError(
                f"LoRA adapter {spec.source!r}: no file {spec.weight_name!r} in {folder}", adapter=spec.source
            )
        return file
    names = sorted(p.name for p in folder.glob("*" + _SUFFIX)) if folder.is_dir() else []
    if DEFAULT_WEIGHT_NAME in names:
        return folder / DEFAULT_WEIGHT_NAME
    if len(names) == 1:
        return folder / names[0]
    if not names:
        raise AdapterNotAvailableError(
            f"LoRA adapter {spec.source!r}: {folder} holds no {_SUFFIX} file", adapter=spec.source
        )
    raise InvalidRequestError(
        f"{field}.weight_name: {spec.source!r} holds several LoRA files ({', '.join(names)}); "
        "pick one with weight_name",
        field=f"{field}.weight_name",
    )


def _check_suffix(name: str, spec: LoRAAdapterSpec, field: str) -> None:
    if not name.lower().endswith(_SUFFIX):
        raise InvalidRequestError(
            f"{field}: {name!r} of {spec.source!r} is not a {_SUFFIX} file; LoRA adapters load from {_SUFFIX} "
            "only (pickled .bin/.ckpt files can run code when read)",
            field=field,
        )


def _hub_file(spec: LoRAAdapterSpec, field: str, config: Any) -> Path:
    """A repo's adapter file from the hub cache; downloaded first only with ``allow_download``."""
    snapshot = cached_snapshot(spec.source, config.cache_dir)
    if snapshot is not None:
        try:
            return _pick(snapshot / spec.subfolder if spec.subfolder else snapshot, spec, field)
        except AdapterNotAvailableError:
            pass  # cached, but not the file asked for: the same fix as an uncached repo
    if not config.allow_download:
        wanted = " ".join(p for p in (spec.source, "/".join(filter(None, (spec.subfolder, spec.weight_name)))) if p)
        raise AdapterNotAvailableError(
            f"LoRA adapter {spec.source!r} is not a local file or folder, not in lora_dir, and not in the local "
            f"Hugging Face cache, and downloads are off. Download it once with `hf download {wanted}`, or allow "
            f"downloads: {_ALLOW_DOWNLOAD}",
            adapter=spec.source,
        )
    snapshot = _download(spec, config.cache_dir)
    return _pick(snapshot / spec.subfolder if spec.subfolder else snapshot, spec, field)


def _download(spec: LoRAAdapterSpec, cache_dir: str | None) -> Path:
    """Fetch the repo's ``.safetensors`` files (only ``weight_name`` when given) into the hub cache."""
    with optional_dependency("diffusers", _NEEDED_BY):
        from huggingface_hub import snapshot_download

    pattern = "/".join(p for p in (spec.subfolder, spec.weight_name or "*" + _SUFFIX) if p)
    try:
        return Path(snapshot_download(spec.source, allow_patterns=[pattern], cache_dir=cache_dir))
    except Exception as exc:  # huggingface_hub raises many types: no repo, no access, no network
        raise AdapterNotAvailableError(
            f"LoRA adapter {spec.source!r} could not be downloaded from the Hugging Face hub: "
            f"{type(exc).__name__}: {exc}",
            adapter=spec.source,
        ) from exc


def _not_found(source: str, lora_dir: str | None) -> str:
    if PurePath(source).name != source or source.endswith(_SUFFIX):  # a path, not a name
        return (
            f"LoRA adapter {source!r} not found: no such file or folder ({Path(source).expanduser().absolute()}). "
            f"Give the path of a {_SUFFIX} file or LoRA folder, a name in lora_dir, or a Hugging Face repo id"
        )
    if not lora_dir:
        where = "no lora_dir is set"
    elif not Path(lora_dir).expanduser().is_dir():
        where = f"lora_dir {lora_dir} is not a folder"
    else:
        where = f"no {source!r} or {source + _SUFFIX!r} in lora_dir {lora_dir}"
    return (
        f"LoRA adapter {source!r} not found: {where}, and no file or folder of that name here. Put "
        f"{source}{_SUFFIX} in a folder set as lora_dir ({LORA_DIR_SETTING}), or give the path of a "
        f"{_SUFFIX} file or LoRA folder, or a Hugging Face repo id (org/name)"
    )


__all__ = ["DEFAULT_WEIGHT_NAME", "LORA_DIR_SETTING", "AdapterFile", "list_adapters", "resolve_adapters"]
