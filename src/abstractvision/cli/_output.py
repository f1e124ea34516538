"""Where results go: ``-o`` (a file or a folder), else the outputs folder; and opening them.

Without ``-o`` results go to ``<user data dir>/abstractvision/outputs`` (platformdirs: e.g.
``~/.local/share/abstractvision/outputs`` on Linux) under names a person can scan:
``20261201-101500_lighthouse-at-dawn_s1234.png`` (time, a slug of the prompt, the seed). The
content-addressed asset store stays what hosts use (``store=``, the plugin); the CLI only falls back
to it when a file cannot be written.

The destination is checked *before* generation (its folder made, and a file created and removed
there), so a bad ``-o`` fails in a second instead of after a long run; each file is written
atomically, so nothing is left half-way if the process dies. A write that still fails (the disk
filled up, the folder went away during the run) keeps the result in the asset store and says where.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..artifacts import write_atomic, write_new
from ..errors import InvalidRequestError

#: short task prefixes for generated file names
TASK_PREFIX = {
    "text_to_image": "t2i",
    "image_to_image": "i2i",
    "text_to_video": "t2v",
    "image_to_video": "i2v",
    "multi_view_image": "views",
    "image_upscale": "upscale",
}


#: Longest prompt slug in a file name, in characters.
SLUG_MAX_CHARS = 48


@dataclass(frozen=True)
class OutputTarget:
    """``path`` is a folder (``is_dir``) or a file name; ``readable``: the default outputs folder,
    whose file names are made for a person to scan (see :func:`readable_stem`)."""

    path: Path
    is_dir: bool = False
    readable: bool = False


def default_output_dir() -> Path:
    """Where results go without ``-o``: the ``outputs`` folder in the platform's user data directory."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("abstractvision")) / "outputs"


def prepare_output(output: str | None) -> OutputTarget:
    """Validate ``-o`` (or the default outputs folder) and create its folder, before any generation work."""
    if output is None:
        target = OutputTarget(default_output_dir(), is_dir=True, readable=True)
    else:
        path = Path(output).expanduser()
        target = OutputTarget(path, is_dir=path.is_dir() or output.endswith(("/", os.sep)))
    folder = target.path if target.is_dir else target.path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        message = f"output: cannot create the folder {folder}: {exc.strerror}"
        raise InvalidRequestError(message, field="output") from None
    try:  # a real file, not os.access: root passes every permission check, yet /proc refuses files
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".abstractvision-check-"):
            pass
    except OSError as exc:
        message = f"output: cannot write in the folder {folder}: {exc.strerror}"
        raise InvalidRequestError(message, field="output") from None
    return target


def slug(text: str | None, max_chars: int = SLUG_MAX_CHARS) -> str:
    """``text`` as lowercase ASCII words joined by ``-``, whole words up to ``max_chars``.

    Accents are dropped (``Café`` -> ``cafe``); what has no ASCII form (``灯台``) is left out.
    """
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    joined = ""
    for word in words:
        longer = f"{joined}-{word}" if joined else word
        if len(longer) > max_chars:
            break
        joined = longer
    return joined or (words[0][:max_chars] if words else "")


def readable_stem(when: datetime, prompt: str | None, seed: Any, task: str) -> str:
    """``20261201-101500_lighthouse-at-dawn_s1234``: time, prompt slug (else the task), seed if any."""
    stem = f"{when:%Y%m%d-%H%M%S}_{slug(prompt) or TASK_PREFIX.get(task, task)}"
    return f"{stem}_s{seed}" if isinstance(seed, int) and not isinstance(seed, bool) else stem


def save_assets(
    assets: list[Any], target: OutputTarget, task: str, store_dir: str | None, prompt: str | None = None
) -> list[dict[str, Any]]:
    """Write each asset and describe it: ``path``, ``mime_type``, ``size_bytes``, ``metadata`` (+ ``artifact``).

    An asset whose file cannot be written goes to the asset store instead: its record then has
    the store's ``path`` and ``artifact``, and ``write_error`` says what failed and where it is.
    """
    from ..media import extension_for

    when = datetime.now()
    saved = []
    for index, asset in enumerate(assets):
        record: dict[str, Any] = {
            "mime_type": asset.mime_type,
            "size_bytes": len(asset.data),
            "metadata": asset.metadata,
        }
        extension = extension_for(asset.mime_type)
        path = None if target.readable else _file_for(target, task, index, len(assets), asset, extension)
        try:
            if path is None:
                stem = readable_stem(when, prompt, asset.metadata.get("seed"), task)
                path = write_new(target.path, stem, extension, asset.data)
            else:
                write_atomic(path, asset.data)
            record["path"] = str(path)
        except OSError as exc:
            record.update(_store(asset, store_dir))
            reason = exc.strerror or type(exc).__name__
            where = path or f"a file in {target.path}"
            record["write_error"] = f"could not write {where} ({reason}); the result is kept at {record['path']}"
        saved.append(record)
    return saved


def _store(asset: Any, store_dir: str | None) -> dict[str, Any]:
    from ..artifacts import LocalAssetStore

    store = LocalAssetStore(store_dir)
    ref = store.store_bytes(asset.data, content_type=asset.mime_type, metadata=asset.metadata)
    return {"artifact": ref, "path": str(store.path_for(ref))}


def _file_for(target: OutputTarget, task: str, index: int, count: int, asset: Any, extension: str) -> Path:
    if target.is_dir:
        import hashlib

        seed = asset.metadata.get("seed")
        tag = f"seed{seed}" if seed is not None else f"{index + 1}"
        digest = hashlib.sha256(asset.data).hexdigest()[:8]
        return target.path / f"{TASK_PREFIX.get(task, task)}-{tag}-{digest}{extension}"
    path = target.path if target.path.suffix else target.path.with_suffix(extension)
    if count > 1:
        path = path.with_name(f"{path.stem}-{index + 1}{path.suffix}")
    return path


def open_files(records: list[dict[str, Any]]) -> None:
    """Open each result with the OS viewer (``click.launch``)."""
    import click

    for record in records:
        click.launch(record["path"])


__all__ = [
    "OutputTarget",
    "SLUG_MAX_CHARS",
    "TASK_PREFIX",
    "default_output_dir",
    "open_files",
    "prepare_output",
    "readable_stem",
    "save_assets",
    "slug",
]
