"""The Diffusers pipelines already on this machine: a scan of the Hugging Face hub cache.

Why a file scan and not ``huggingface_hub.scan_cache_dir`` or ``import diffusers``: listing the
catalog must be cheap and must never reach the network; reading ``model_index.json`` from each
``models--org--name/snapshots/<rev>/`` folder is enough to know the pipeline class, and the class
name says which tasks it serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..types import IMAGE_TASKS, ProviderModelInfo
from . import optional_dependency
from .base_backend import UPSCALE_TASK

#: Pipeline families whose text-to-image pipeline also serves image-to-image and inpainting through
#: ``AutoPipelineForImage2Image`` / ``AutoPipelineForInpainting`` (``from_pipe``).
_EDITABLE_FAMILIES = (
    "StableDiffusionPipeline",
    "StableDiffusionXLPipeline",
    "StableDiffusion3Pipeline",
    "FluxPipeline",
    "KandinskyV22Pipeline",
    "LatentConsistencyModelPipeline",
)

#: Words in a class name that mean "not an image pipeline this backend runs".
_NOT_IMAGE = ("Video", "Audio", "AnimateDiff", "I2VGen", "Wan", "Music", "Upscale", "Prior", "Controlnet", "ControlNet")


def default_hub_cache() -> Path:
    """The hub cache Diffusers reads (``HF_HUB_CACHE``/``HF_HOME`` resolved by huggingface_hub).

    Why ask huggingface_hub instead of reading the variables here: its precedence (``HF_HUB_CACHE``,
    the legacy ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME``) is what Diffusers
    obeys, and a copy would drift. Without the extra, ``cache_dir`` still lists a folder.
    """
    with optional_dependency("diffusers", "the diffusers backend"):
        from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def tasks_for_pipeline_class(class_name: str) -> tuple[str, ...]:
    """The abstractvision tasks a Diffusers pipeline class serves; ``()`` for anything else.

    Upscale pipelines serve ``image_upscale`` as the backend's ``upscaler``, not as its model."""
    if class_name.endswith("Pipeline") and "Upscale" in class_name:
        return (UPSCALE_TASK,)
    if not class_name.endswith("Pipeline") or any(word in class_name for word in _NOT_IMAGE):
        return ()
    if "Img2Img" in class_name or "Image2Image" in class_name or "Inpaint" in class_name:
        return ("image_to_image",)
    if class_name in _EDITABLE_FAMILIES:
        return IMAGE_TASKS
    return ("text_to_image",)


def _latest_snapshot(
    repo_folder: Path, revision: str | None = None, marker: str | None = "model_index.json"
) -> Path | None:
    """The snapshot ``refs/<revision or main>`` points to (or ``snapshots/<revision>`` for a commit
    hash); without a revision and without ``refs/main``, the newest snapshot. Only snapshots holding
    ``marker`` count (``None``: any)."""

    def fits(snapshot: Path) -> bool:
        return (snapshot / marker).is_file() if marker else snapshot.is_dir()

    snapshots = repo_folder / "snapshots"
    ref = repo_folder / "refs" / (revision or "main")
    pinned = snapshots / ref.read_text("utf-8").strip() if ref.is_file() else snapshots / (revision or "-")
    if fits(pinned):
        return pinned
    if revision is not None:
        return None
    candidates = [p for p in snapshots.glob("*") if fits(p)]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def cached_repos(cache_dir: str | Path | None = None, marker: str | None = None) -> list[tuple[str, Path]]:
    """``(repo id, snapshot folder)`` of every model repo in the hub cache (whose snapshot holds
    ``marker``, when given), sorted by id."""
    root = Path(cache_dir or default_hub_cache()).expanduser()
    if not root.is_dir():
        return []
    found = []
    for repo_folder in sorted(root.glob("models--*")):
        snapshot = _latest_snapshot(repo_folder, marker=marker)
        if snapshot is not None:
            found.append((repo_folder.name[len("models--") :].replace("--", "/", 1), snapshot))
    return found


def cached_snapshot(
    repo_id: str, cache_dir: str | Path | None = None, revision: str | None = None, marker: str | None = None
) -> Path | None:
    """The cached snapshot folder of hub repo ``repo_id`` (holding ``marker``, when given), else None."""
    repo_folder = Path(cache_dir or default_hub_cache()).expanduser() / ("models--" + repo_id.replace("/", "--"))
    return _latest_snapshot(repo_folder, revision, marker) if repo_folder.is_dir() else None


def _read_index(snapshot: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((snapshot / "model_index.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("_class_name"), str) else None


def pipeline_folder(model_id: str, cache_dir: str | Path | None = None, revision: str | None = None) -> Path | None:
    """The folder holding ``model_index.json`` for a local pipeline folder or a cached repo id, else None.

    Why resolve the cache here instead of ``from_pretrained(repo_id, local_files_only=True)``:
    huggingface_hub still opens a connection in that mode (it fetches an "agent harnesses"
    registry to build its user agent), so cache-only loading hands Diffusers a plain folder.
    """
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        return folder if (folder / "model_index.json").is_file() else None
    if model_id.count("/") != 1:
        return None
    return cached_snapshot(model_id, cache_dir, revision, "model_index.json")


def size_multiple(folder: Path) -> int | None:
    """What width and height must be multiples of, read from the pipeline's files (None: unknown).

    The VAE downsamples by ``2 ** (len(block_out_channels) - 1)``; pipelines that pack 2x2 latent
    patches (the Flux family) need twice that.
    """
    index = _read_index(folder)
    try:
        vae = json.loads((folder / "vae" / "config.json").read_text("utf-8"))
        factor = 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    packed = index is not None and index["_class_name"].startswith("Flux")
    return factor * 2 if packed else factor


def list_cached_pipelines(cache_dir: str | Path | None = None, task: str | None = None) -> list[ProviderModelInfo]:
    """Every cached Diffusers pipeline (optionally only those serving ``task``), sorted by id."""
    found: list[ProviderModelInfo] = []
    for model_id, snapshot in cached_repos(cache_dir, "model_index.json"):
        index = _read_index(snapshot)
        if index is None:
            continue
        tasks = tasks_for_pipeline_class(index["_class_name"])
        if not tasks or (task is not None and task not in tasks):
            continue
        found.append(
            ProviderModelInfo(
                id=model_id,
                object="diffusers_pipeline",
                owned_by=model_id.split("/")[0],
                capabilities=tasks,
                raw={"class_name": index["_class_name"], "snapshot": str(snapshot)},
            )
        )
    return found


__all__ = [
    "cached_repos",
    "cached_snapshot",
    "default_hub_cache",
    "list_cached_pipelines",
    "pipeline_folder",
    "size_multiple",
    "tasks_for_pipeline_class",
]
