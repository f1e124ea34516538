"""Where results go: a file, a directory, or the local asset store; and opening them.

The destination is checked *before* generation (its folder made, and a file created and removed
there), so a bad ``-o`` fails in a second instead of after a long run; each file is written
atomically, so nothing is left half-way if the process dies. A write that still fails (the disk
filled up, the folder went away during the run) keeps the result in the asset store and says where.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import write_atomic
from ..errors import InvalidRequestError

#: short task prefixes for generated file names
TASK_PREFIX = {
    "text_to_image": "t2i",
    "image_to_image": "i2i",
    "text_to_video": "t2v",
    "image_to_video": "i2v",
    "multi_view_image": "views",
}


@dataclass(frozen=True)
class OutputTarget:
    """``path`` is a directory (``is_dir``) or a file name; ``None`` means the asset store."""

    path: Path | None
    is_dir: bool = False


def prepare_output(output: str | None) -> OutputTarget:
    """Validate ``-o`` and create its folder, before any generation work."""
    if output is None:
        return OutputTarget(None)
    path = Path(output).expanduser()
    is_dir = path.is_dir() or output.endswith(("/", os.sep))
    folder = path if is_dir else path.parent
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
    return OutputTarget(path, is_dir)


def save_assets(assets: list[Any], target: OutputTarget, task: str, store_dir: str | None) -> list[dict[str, Any]]:
    """Write each asset and describe it: ``path``, ``mime_type``, ``size_bytes``, ``metadata`` (+ ``artifact``).

    An asset whose file cannot be written goes to the asset store instead: its record then has
    the store's ``path`` and ``artifact``, and ``write_error`` says what failed and where it is.
    """
    from ..media import extension_for

    saved = []
    for index, asset in enumerate(assets):
        record: dict[str, Any] = {
            "mime_type": asset.mime_type,
            "size_bytes": len(asset.data),
            "metadata": asset.metadata,
        }
        if target.path is None:
            record.update(_store(asset, store_dir))
        else:
            path = _file_for(target, task, index, len(assets), asset, extension_for(asset.mime_type))
            try:
                write_atomic(path, asset.data)
                record["path"] = str(path)
            except OSError as exc:
                record.update(_store(asset, store_dir))
                reason = exc.strerror or type(exc).__name__
                record["write_error"] = f"could not write {path} ({reason}); the result is kept at {record['path']}"
        saved.append(record)
    return saved


def _store(asset: Any, store_dir: str | None) -> dict[str, Any]:
    from ..artifacts import LocalAssetStore

    store = LocalAssetStore(store_dir)
    ref = store.store_bytes(asset.data, content_type=asset.mime_type, metadata=asset.metadata)
    return {"artifact": ref, "path": str(store.path_for(ref))}


def _file_for(target: OutputTarget, task: str, index: int, count: int, asset: Any, extension: str) -> Path:
    assert target.path is not None
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


__all__ = ["OutputTarget", "TASK_PREFIX", "open_files", "prepare_output", "save_assets"]
