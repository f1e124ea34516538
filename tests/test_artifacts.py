"""LocalAssetStore and RuntimeArtifactStoreAdapter on a real temporary directory."""

from __future__ import annotations

import hashlib
import json

import pytest

from abstractvision import LocalAssetStore, RuntimeArtifactStoreAdapter, is_artifact_ref
from abstractvision.artifacts import MediaStore
from abstractvision.errors import ArtifactError, ArtifactNotFoundError
from fixtures.images import make_png


@pytest.fixture
def store(tmp_path):
    return LocalAssetStore(tmp_path / "assets")


def test_store_and_load_round_trip(store):
    data = make_png()
    ref = store.store_bytes(data, metadata={"seed": 1}, tags={"kind": "test"}, run_id="run-1")
    assert is_artifact_ref(ref)
    assert ref["$artifact"] == ref["sha256"] == hashlib.sha256(data).hexdigest()
    assert ref["size_bytes"] == len(data) and ref["content_type"] == "image/png"
    assert ref["run_id"] == "run-1" and ref["tags"] == {"kind": "test"}
    assert store.load_bytes(ref) == data
    assert store.load_bytes(ref["$artifact"]) == data
    assert store.get_metadata(ref)["metadata"] == {"seed": 1}
    assert store.path_for(ref).suffix == ".png"
    assert json.loads(json.dumps(ref)) == ref  # refs are JSON-able


def test_content_addressing_dedupes_and_updates_metadata(store):
    data = make_png()
    first = store.store_bytes(data, metadata={"v": 1})
    second = store.store_bytes(data, metadata={"v": 2})
    assert first["$artifact"] == second["$artifact"]
    assert store.get_metadata(first)["metadata"] == {"v": 2}
    assert len(store.list()) == 1


def test_list_filters_and_delete(store):
    a = store.store_bytes(make_png(color=(1, 2, 3)), tags={"t": "x"})
    b = store.store_bytes(b"\x1a\x45\xdf\xa3webm-ish", content_type="video/webm")
    assert {r["$artifact"] for r in store.list()} == {a["$artifact"], b["$artifact"]}
    assert [r["$artifact"] for r in store.list(content_type="video/")] == [b["$artifact"]]
    assert [r["$artifact"] for r in store.list(tags={"t": "x"})] == [a["$artifact"]]
    assert store.delete(a) is True
    assert store.delete(a) is False
    with pytest.raises(ArtifactNotFoundError):
        store.load_bytes(a)


def test_no_temp_files_are_left_behind(store):
    store.store_bytes(make_png())
    assert not [p for p in store.base_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    "bad_id",
    ["../../etc/passwd", "/etc/passwd", "..", "a" * 63, "A" * 64, ("0" * 63) + "/", "%2e%2e%2fetc", "", 5],
)
def test_ids_cannot_escape_the_store(store, bad_id):
    for operation in (store.load_bytes, store.get_metadata, store.delete, store.path_for):
        with pytest.raises(ArtifactError):
            operation(bad_id)
        with pytest.raises(ArtifactError):
            operation({"$artifact": bad_id})


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\x00"])
def test_ids_are_matched_whole_so_a_trailing_newline_is_not_an_id(store, suffix):
    artifact_id = store.store_bytes(make_png())["$artifact"] + suffix
    for operation in (store.load_bytes, store.get_metadata, store.delete, store.path_for):
        with pytest.raises(ArtifactError, match="invalid artifact id") as info:
            operation(artifact_id)
        assert not isinstance(info.value, ArtifactNotFoundError)
    assert len(store.list()) == 1  # the stored artifact itself is untouched


def test_missing_artifact_is_typed(store):
    with pytest.raises(ArtifactNotFoundError, match="no artifact"):
        store.load_bytes("0" * 64)


def test_default_directory_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ABSTRACTVISION_STORE_DIR", str(tmp_path / "from-env"))
    assert LocalAssetStore().base_dir == tmp_path / "from-env"
    assert LocalAssetStore(tmp_path / "explicit").base_dir == tmp_path / "explicit"


def test_is_artifact_ref():
    assert is_artifact_ref({"$artifact": "abc"})
    assert not is_artifact_ref({"$artifact": ""})
    assert not is_artifact_ref({"id": "abc"})
    assert not is_artifact_ref("abc")
    assert not is_artifact_ref(None)


class HostStore:
    """Shaped like a host framework's store: store(content, content_type, run_id, tags) -> obj."""

    class Meta:
        def __init__(self, artifact_id):
            self.artifact_id = artifact_id

    class Artifact:
        def __init__(self, content):
            self.content = content

    def __init__(self):
        self.items = {}
        self.calls = []

    def store(self, content, content_type=None, run_id=None, tags=None):
        self.calls.append({"content_type": content_type, "run_id": run_id, "tags": tags})
        artifact_id = f"host-{len(self.items)}"
        self.items[artifact_id] = content
        return self.Meta(artifact_id)

    def load(self, artifact_id):
        content = self.items.get(artifact_id)
        return None if content is None else self.Artifact(content)


def test_runtime_adapter_wraps_a_duck_typed_host_store():
    host = HostStore()
    adapter = RuntimeArtifactStoreAdapter(host)
    assert isinstance(adapter, MediaStore)
    data = make_png()
    ref = adapter.store_bytes(data, run_id="r1", tags={"a": "b"}, metadata={"ignored": True})
    assert ref["$artifact"] == "host-0" and ref["run_id"] == "r1" and ref["size_bytes"] == len(data)
    assert host.calls == [{"content_type": "image/png", "run_id": "r1", "tags": {"a": "b"}}]
    assert adapter.load_bytes(ref) == data
    with pytest.raises(ArtifactNotFoundError):
        adapter.load_bytes("host-9")


def test_runtime_adapter_refuses_an_object_that_is_not_a_store():
    with pytest.raises(ArtifactError, match="cannot act as an artifact store"):
        RuntimeArtifactStoreAdapter(object())
