"""Inputs and outputs at a host boundary: bytes, file paths and artifact refs.

Why: a host framework hands images over as bytes, as a path, or as an artifact ref from its own
store, and wants results back as bytes (library mode) or as a ref (framework mode) so that an
agent's context never carries megabytes. The manager itself runs without a store here, so the
host's ``run_id``, ``tags`` and ``metadata`` can be attached to the artifact at the one place
it is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..artifacts import MediaStore, RuntimeArtifactStoreAdapter, is_artifact_ref
from ..errors import InvalidRequestError
from ..types import GeneratedAsset


def as_media_store(store: Any) -> MediaStore | None:
    """``store`` as a :class:`MediaStore` (host stores are wrapped), ``None`` stays ``None``."""
    if store is None or isinstance(store, MediaStore):
        return store
    return RuntimeArtifactStoreAdapter(store)


def load_input(value: Any, field: str, store: MediaStore | None) -> Any:
    """Artifact refs become bytes read from ``store``; bytes and paths pass on to the manager."""
    if not is_artifact_ref(value):
        return value
    if store is None:
        raise InvalidRequestError(
            f"{field}: got an artifact ref but no artifact_store to read it from; pass artifact_store=...",
            field=field,
        )
    return store.load_bytes(value)


def deliver(
    asset: GeneratedAsset,
    store: MediaStore | None,
    *,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> bytes | dict[str, Any]:
    """The asset's bytes, or with a store the ref of the stored artifact.

    The artifact's metadata is the generation provenance plus the caller's ``metadata`` (which
    never reaches the provider); the ref carries ``run_id``, ``tags`` and that metadata so hosts
    whose store keeps no metadata still get it back.
    """
    if store is None:
        return asset.data
    merged = {**asset.metadata, **dict(metadata or {})}
    ref = store.store_bytes(asset.data, content_type=asset.mime_type, metadata=merged, tags=tags, run_id=run_id)
    ref = dict(ref)
    if run_id:
        ref["run_id"] = run_id
    if tags:
        ref["tags"] = {str(k): str(v) for k, v in tags.items()}
    ref["metadata"] = merged
    return ref


__all__ = ["as_media_store", "deliver", "load_input"]
