"""stable-diffusion.cpp LoRA: a call's :class:`LoRAAdapterSpec` tuple as the files, the folder and the
prompt tags sd.cpp reads.

What sd.cpp does with adapters (0.4.5, the version built and tested here; read from its source):

* sd-cli takes ``<lora:NAME:SCALE>`` tags from the prompt (``examples/common/common.hpp``,
  ``extract_and_remove_lora``), removes them from the text, and loads ``NAME`` relative to
  ``--lora-model-dir`` (default ``.``), or from an absolute path. The bindings do the same in Python
  (``StableDiffusion._extract_and_build_loras``) against the ``lora_model_dir`` given to their
  constructor. Only the positive prompt is read for tags.
* A tag naming no file is dropped with a warning, and the image is made without it; a file whose
  content sd.cpp cannot read (it goes by content: safetensors, GGUF, zip checkpoints) is skipped
  the same way. So every file is checked here, before the engine runs, and a missing one is an
  :class:`AdapterNotAvailableError`.
* A caller-written tag would load any file under the folder, or any absolute path: prompts that hold
  ``<lora:`` are refused, and only the tags built here reach sd.cpp.

Why a folder of links per call: adapters may live in different folders, and sd.cpp takes one. Each
adapter becomes a link named after its :func:`~abstractvision.lora.adapter_name` (plus its file's
suffix) in a folder made for the call, and its tag names that link: two adapters from two folders
never collide, and the names are the caller's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AdapterNotAvailableError, InvalidRequestError
from ..lora import adapter_name
from ..types import LoRAAdapterSpec

#: File endings sd.cpp adapters come in (it reads the format from the content, these name the files).
SUFFIXES = (".safetensors", ".gguf", ".ckpt", ".pt")
#: What sd.cpp starts a prompt tag with (``<lora:NAME:SCALE>``, case as written).
TAG_START = "<lora:"
#: Bytes read to tell whether a file is one sd.cpp can load.
_HEAD = 9


@dataclass(frozen=True)
class SdcppLora:
    """One adapter of a call, resolved: the name sd.cpp sees, the file, the scale."""

    name: str
    path: Path
    scale: float

    @property
    def link_name(self) -> str:
        """The file name in the call's adapter folder (the name with the file's own suffix)."""
        return self.name + self.path.suffix

    @property
    def tag(self) -> str:
        return f"{TAG_START}{self.link_name}:{self.scale!r}>"


def refuse_tags(fields: Mapping[str, str]) -> None:
    """Refuse a prompt that carries its own ``<lora:`` tag (it could make sd.cpp load any file)."""
    for name, text in fields.items():
        if TAG_START in text:
            raise InvalidRequestError(
                f"{name}: holds a '{TAG_START}' tag; pass adapters as lora_adapters (LoRAAdapterSpec, --lora), "
                "the backend writes the tags itself",
                field=name,
            )


def prompt_with_tags(prompt: str, loras: Sequence[SdcppLora]) -> str:
    """``prompt`` with the adapters' tags appended. No space before them: sd.cpp removes the tags, and
    what is left must be the caller's prompt exactly (a trailing space is another prompt)."""
    return prompt + "".join(lora.tag for lora in loras)


def resolve_adapters(adapters: Sequence[LoRAAdapterSpec], lora_dir: Path | None, base: Path) -> tuple[SdcppLora, ...]:
    """Each spec as a checked file: an absolute path, a name (or relative path) in ``lora_dir``, or a
    path relative to ``base``. A folder source takes ``subfolder``/``weight_name`` (or holds one
    adapter file). Raises :class:`AdapterNotAvailableError` naming what was looked for."""
    return tuple(_resolve(spec, f"lora_adapters[{index}]", lora_dir, base) for index, spec in enumerate(adapters))


def _resolve(spec: LoRAAdapterSpec, field: str, lora_dir: Path | None, base: Path) -> SdcppLora:
    source = Path(spec.source).expanduser()
    roots = [] if source.is_absolute() else [lora_dir] if lora_dir is not None else []
    candidates = [root / source for root in roots] + [base / source]
    looked: list[Path] = []
    for candidate in candidates:
        named = candidate.name != ""  # "." or "/" take no suffix
        for path in (candidate, *(candidate.with_name(candidate.name + s) for s in SUFFIXES if named)):
            looked.append(path)
            if path.exists():
                return SdcppLora(adapter_name(spec), _pick_file(spec, field, path.resolve()), spec.scale)
    where = ", ".join(str(path) for path in looked[:4]) + (", ..." if len(looked) > 4 else "")
    hint = "" if lora_dir is not None else " or set lora_dir (ABSTRACTVISION_SDCPP_LORA_DIR) to its folder,"
    raise AdapterNotAvailableError(
        f"{field}.source: no LoRA file {spec.source!r} (looked at {where}); give the path of a "
        f"{'/'.join(SUFFIXES)} file, or its name in lora_dir,{hint} (stable-diffusion.cpp never downloads adapters)",
        adapter=spec.source,
    )


def _pick_file(spec: LoRAAdapterSpec, field: str, path: Path) -> Path:
    """The adapter file ``path`` is, or the one ``subfolder``/``weight_name`` pick inside it."""
    if path.is_file():
        if spec.weight_name or spec.subfolder:
            part = "weight_name" if spec.weight_name else "subfolder"
            raise InvalidRequestError(
                f"{field}.{part}: picks a file inside a folder, but source {spec.source!r} is a file",
                field=f"{field}.{part}",
            )
        return _checked(path, spec)
    folder = path / spec.subfolder if spec.subfolder else path
    if spec.weight_name:
        return _checked(folder / spec.weight_name, spec)
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES) if folder.is_dir() else []
    if len(found) != 1:
        listed = ", ".join(p.name for p in found[:8]) or "none"
        raise AdapterNotAvailableError(
            f"{field}: folder {folder} holds {len(found)} adapter files ({listed}); "
            "name one with weight_name= (or give the file's path)",
            adapter=spec.source,
        )
    return _checked(found[0], spec)


def _checked(path: Path, spec: LoRAAdapterSpec) -> Path:
    """``path`` once it is a file in a format sd.cpp reads (it would skip anything else with a warning)."""
    if not path.is_file():
        raise AdapterNotAvailableError(
            f"LoRA file not found: {path} (from source {spec.source!r}); check weight_name/subfolder",
            adapter=spec.source,
        )
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    safetensors = len(head) == _HEAD and head[8:9] == b"{"  # 8-byte header length, then the JSON header
    if not (safetensors or head[:4] in (b"GGUF", b"PK\x03\x04")):
        raise AdapterNotAvailableError(
            f"{path} is not a LoRA file stable-diffusion.cpp reads (safetensors, GGUF, or a .ckpt/.pt zip)",
            adapter=spec.source,
        )
    return path.resolve()


def link_adapters(folder: Path, loras: Sequence[SdcppLora]) -> None:
    """Make ``folder`` hold exactly one entry per adapter, named :attr:`SdcppLora.link_name`.

    A symbolic link where the system allows one, else a copy (Windows without the right to make links)."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        entry.unlink()
    for lora in loras:
        target = folder / lora.link_name
        try:
            os.symlink(lora.path, target)
        except OSError:
            shutil.copyfile(lora.path, target)


__all__ = [
    "SUFFIXES",
    "TAG_START",
    "SdcppLora",
    "link_adapters",
    "prompt_with_tags",
    "refuse_tags",
    "resolve_adapters",
]
