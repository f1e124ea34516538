"""Where generated media goes when the caller does not want raw bytes.

An *artifact ref* is a small JSON-able dict ``{"$artifact": id, "content_type", "sha256",
"size_bytes", ...}`` that an agent or a web API can pass around instead of megabytes of image
data. :class:`LocalAssetStore` keeps content-addressed files on disk with a JSON sidecar;
:class:`RuntimeArtifactStoreAdapter` lets a host framework's own store play the same role.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import ArtifactError, ArtifactNotFoundError

REF_KEY = "$artifact"
#: A store id, matched whole (``fullmatch``: ``$`` alone would accept a trailing newline).
_ID_PATTERN = re.compile(r"[0-9a-f]{64}")


@runtime_checkable
class MediaStore(Protocol):
    """What the manager needs from a store: put bytes in, get a ref back, and read them again."""

    def store_bytes(
        self,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]: ...

    def load_bytes(self, ref: Any) -> bytes: ...


def is_artifact_ref(value: Any) -> bool:
    """True for a dict shaped like an artifact ref (has a non-empty string ``$artifact``)."""
    return isinstance(value, Mapping) and isinstance(value.get(REF_KEY), str) and bool(value.get(REF_KEY))


def artifact_id_of(ref: Any) -> str:
    """The id of a ref dict, or the value itself when it already is an id string."""
    if is_artifact_ref(ref):
        return ref[REF_KEY]
    if isinstance(ref, str) and ref:
        return ref
    raise ArtifactError(f"expected an artifact ref ({{'{REF_KEY}': id, ...}}) or an id, got {type(ref).__name__}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_new(folder: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/stem+suffix``, or ``stem-2``, ``stem-3``, ... when taken; return the path.

    Never overwrites, even with another process picking names in the same folder: the content goes
    to a temporary file first and is then hard-linked to the first free name (a link fails when the
    name exists). Where the filesystem has no hard links, the name is claimed with an exclusive
    create and the content renamed onto it.
    """
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        number = 1
        while True:
            path = folder / f"{stem}{'' if number == 1 else f'-{number}'}{suffix}"
            try:
                _claim(Path(tmp), path)
                return path
            except FileExistsError:
                number += 1
    finally:
        Path(tmp).unlink(missing_ok=True)


def _claim(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network shares): claim the name, then move in
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.replace(tmp, path)


def make_ref(
    artifact_id: str,
    data: bytes,
    content_type: str,
    *,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """The ref dict every store returns: id, type, digest and size, plus run id and tags when given."""
    ref: dict[str, Any] = {
        REF_KEY: artifact_id,
        "content_type": content_type,
        "sha256": sha256 or hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
    }
    if run_id:
        ref["run_id"] = run_id
    if tags:
        ref["tags"] = {str(k): str(v) for k, v in tags.items()}
    return ref


def _json_safe(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    return json.loads(json.dumps(dict(metadata or {}), default=str))


class LocalAssetStore:
    """Content-addressed files plus a JSON metadata sidecar, written atomically.

    The id is the SHA-256 of the content, so storing the same bytes twice yields the same ref;
    the sidecar is rewritten with the newest metadata. Ids are validated against ``[0-9a-f]{64}``
    before any path is built, so an id can never name a file outside the store.
    """

    def __init__(self, base_dir: str | os.PathLike[str] | None = None):
        if base_dir is None:
            from .config import load_settings

            base_dir = load_settings().store_dir or Path.home() / ".abstractvision" / "assets"
        self.base_dir = Path(base_dir).expanduser()

    def __repr__(self) -> str:
        return f"LocalAssetStore(base_dir={str(self.base_dir)!r})"

    # ---- paths ------------------------------------------------------------------------------
    def _check_id(self, artifact_id: str) -> str:
        if not isinstance(artifact_id, str) or not _ID_PATTERN.fullmatch(artifact_id):
            raise ArtifactError(
                f"invalid artifact id {artifact_id!r}: a LocalAssetStore id is 64 lowercase hex characters"
            )
        return artifact_id

    def _sidecar(self, artifact_id: str) -> Path:
        return self.base_dir / f"{self._check_id(artifact_id)}.json"

    def _content_path(self, artifact_id: str, meta: Mapping[str, Any] | None = None) -> Path:
        meta = meta if meta is not None else self._read_sidecar(artifact_id)
        from .media import extension_for

        path = (self.base_dir / f"{artifact_id}{extension_for(meta.get('content_type', ''))}").resolve()
        if path.parent != self.base_dir.resolve():  # belt and braces: the id check already prevents it
            raise ArtifactError(f"artifact {artifact_id!r} resolves outside the store")
        return path

    def _read_sidecar(self, artifact_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._sidecar(artifact_id).read_text("utf-8"))
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"no artifact {artifact_id!r} in {self.base_dir}") from None

    # ---- API -------------------------------------------------------------------------------
    def store_bytes(
        self,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """Store ``data`` and return its ref. Content first, sidecar second: a crash leaves no ref."""
        from .media import sniff_mime_type

        data = bytes(data)
        content_type = content_type or sniff_mime_type(data) or "application/octet-stream"
        artifact_id = hashlib.sha256(data).hexdigest()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        record = make_ref(artifact_id, data, content_type, run_id=run_id, tags=tags, sha256=artifact_id)
        record["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if filename:
            record["filename"] = os.path.basename(filename)
        content_path = self._content_path(artifact_id, record)
        if not content_path.exists() or content_path.stat().st_size != len(data):
            write_atomic(content_path, data)
        sidecar = {**record, "metadata": _json_safe(metadata)}
        write_atomic(self._sidecar(artifact_id), json.dumps(sidecar, indent=2, sort_keys=True).encode())
        return record

    def load_bytes(self, ref: Any) -> bytes:
        artifact_id = self._check_id(artifact_id_of(ref))
        path = self._content_path(artifact_id)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"artifact {artifact_id!r} has metadata but its file is missing") from None

    def get_metadata(self, ref: Any) -> dict[str, Any]:
        """The sidecar: the ref fields plus ``metadata`` (generation provenance)."""
        return self._read_sidecar(self._check_id(artifact_id_of(ref)))

    def path_for(self, ref: Any) -> Path:
        """The file holding an artifact's bytes (for ``--open`` and the like)."""
        return self._content_path(self._check_id(artifact_id_of(ref)))

    def list(self, *, content_type: str | None = None, tags: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Refs of stored artifacts, newest first, optionally filtered by type prefix and tags."""
        if not self.base_dir.is_dir():
            return []
        refs = []
        for sidecar in self.base_dir.glob("*.json"):
            if not _ID_PATTERN.fullmatch(sidecar.stem):
                continue
            try:
                record = json.loads(sidecar.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if content_type and not str(record.get("content_type", "")).startswith(content_type):
                continue
            if tags and any(record.get("tags", {}).get(k) != v for k, v in tags.items()):
                continue
            refs.append({k: v for k, v in record.items() if k != "metadata"})
        refs.sort(key=lambda r: r.get("created_at", ""), reverse=True)
        return refs

    def delete(self, ref: Any) -> bool:
        """Remove an artifact; ``False`` if it was not there."""
        artifact_id = self._check_id(artifact_id_of(ref))
        try:
            meta = self._read_sidecar(artifact_id)
        except ArtifactNotFoundError:
            return False
        self._content_path(artifact_id, meta).unlink(missing_ok=True)
        self._sidecar(artifact_id).unlink(missing_ok=True)
        return True


class RuntimeArtifactStoreAdapter:
    """Wrap a host framework's artifact store (duck typed) as a :class:`MediaStore`.

    Accepted host shapes: ``store_bytes(...)`` returning a ref or id; ``store(content, ...)``
    or ``put(...)`` returning an object/dict with ``artifact_id``/``id``; reading through
    ``load_bytes``, ``load``/``get`` (returning bytes or an object with ``content``/``data``).
    """

    def __init__(self, store: Any):
        if not any(hasattr(store, name) for name in ("store_bytes", "store", "put")):
            raise ArtifactError(
                f"{type(store).__name__} has none of store_bytes/store/put: it cannot act as an artifact store"
            )
        self.store = store

    def __repr__(self) -> str:
        return f"RuntimeArtifactStoreAdapter({type(self.store).__name__})"

    def store_bytes(
        self,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        from .media import sniff_mime_type

        content_type = content_type or sniff_mime_type(data) or "application/octet-stream"
        kwargs = {"content_type": content_type, "run_id": run_id, "tags": dict(tags or {})}
        if hasattr(self.store, "store_bytes"):
            result = self.store.store_bytes(data, metadata=_json_safe(metadata), **kwargs)
        else:
            method = getattr(self.store, "store", None) or self.store.put
            result = _call_tolerant(method, data, kwargs, metadata)
        return make_ref(_extract_id(result), data, content_type, run_id=run_id, tags=tags)

    def load_bytes(self, ref: Any) -> bytes:
        artifact_id = artifact_id_of(ref)
        for name in ("load_bytes", "load", "get"):
            method = getattr(self.store, name, None)
            if method is None:
                continue
            result = method(artifact_id)
            if result is None:
                raise ArtifactNotFoundError(f"no artifact {artifact_id!r} in {type(self.store).__name__}")
            for attr in ("content", "data"):
                if not isinstance(result, (bytes, bytearray)) and hasattr(result, attr):
                    result = getattr(result, attr)
            return bytes(result)
        raise ArtifactError(f"{type(self.store).__name__} has no load_bytes/load/get method to read artifacts")

    def get_metadata(self, ref: Any) -> dict[str, Any]:
        method = getattr(self.store, "get_metadata", None)
        if method is None:
            return {}
        meta = method(artifact_id_of(ref))
        if meta is None:
            return {}
        return dict(meta) if isinstance(meta, Mapping) else dict(getattr(meta, "__dict__", {}))


def _call_tolerant(method: Any, data: bytes, kwargs: dict[str, Any], metadata: Mapping[str, Any] | None) -> Any:
    """Call a host ``store``/``put`` with the keyword arguments it accepts."""
    import inspect

    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return method(data)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    wanted = dict(kwargs, metadata=_json_safe(metadata))
    return method(data, **{k: v for k, v in wanted.items() if accepts_any or k in params})


def _extract_id(result: Any) -> str:
    if isinstance(result, str) and result:
        return result
    if is_artifact_ref(result):
        return result[REF_KEY]
    for key in ("artifact_id", "id"):
        value = result.get(key) if isinstance(result, Mapping) else getattr(result, key, None)
        if isinstance(value, str) and value:
            return value
    raise ArtifactError(f"the host store returned {type(result).__name__}, with no artifact id in it")


__all__ = [
    "LocalAssetStore",
    "MediaStore",
    "REF_KEY",
    "RuntimeArtifactStoreAdapter",
    "artifact_id_of",
    "is_artifact_ref",
    "write_atomic",
    "write_new",
]
