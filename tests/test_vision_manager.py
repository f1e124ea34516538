"""VisionManager's own logic: validation, gating, routing, batches, stores, async, threads."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from abstractvision import LocalAssetStore, VisionManager, is_artifact_ref
from abstractvision.errors import (
    BackendNotConfiguredError,
    BatchGenerationError,
    CapabilityNotSupportedError,
    GenerationCancelledError,
    InvalidRequestError,
    UnknownModelError,
)
from abstractvision.media import read_png_metadata
from abstractvision.types import GeneratedAsset, VisionBackendCapabilities
from fixtures.fake_backend import RecordingBackend
from fixtures.images import make_jpeg, make_png

# (description, call) pairs: every one must raise InvalidRequestError naming `field`, backend untouched.
PNG = make_png(32, 32)
BAD_INPUTS = [
    ("prompt", lambda m: m.generate_image("")),
    ("prompt", lambda m: m.generate_image("   ")),
    ("prompt", lambda m: m.generate_image(None)),
    ("prompt", lambda m: m.generate_image(42)),
    ("negative_prompt", lambda m: m.generate_image("cat", negative_prompt=3)),
    ("prompt", lambda m: m.generate_image("a cat \ud800")),  # lone surrogate: not encodable text
    ("prompt", lambda m: m.generate_image("a\x00cat")),
    ("prompt", lambda m: m.generate_image("cat " * 8001)),  # over MAX_PROMPT_CHARS
    ("prompt", lambda m: m.edit_image("\udfff", PNG)),
    ("negative_prompt", lambda m: m.generate_image("cat", negative_prompt="blur\udc80")),
    ("negative_prompt", lambda m: m.generate_image("cat", negative_prompt="blur\x00")),
    ("width", lambda m: m.generate_image("cat", width=0)),
    ("width", lambda m: m.generate_image("cat", width=-64)),
    ("width", lambda m: m.generate_image("cat", width=64.5)),
    ("width", lambda m: m.generate_image("cat", width="512")),
    ("width", lambda m: m.generate_image("cat", width=True)),
    ("height", lambda m: m.generate_image("cat", height=0)),
    ("width", lambda m: m.generate_image("cat", width=4096)),  # backend max_width 2048
    ("steps", lambda m: m.generate_image("cat", steps=0)),
    ("steps", lambda m: m.generate_image("cat", steps=2.5)),
    ("guidance_scale", lambda m: m.generate_image("cat", guidance_scale=float("nan"))),
    ("guidance_scale", lambda m: m.generate_image("cat", guidance_scale=float("inf"))),
    ("guidance_scale", lambda m: m.generate_image("cat", guidance_scale="high")),
    ("guidance_scale", lambda m: m.generate_image("cat", guidance_scale=-1)),
    ("seed", lambda m: m.generate_image("cat", seed=-1)),
    ("seed", lambda m: m.generate_image("cat", seed=2**32)),
    ("seed", lambda m: m.generate_image("cat", seed="7")),
    ("extra", lambda m: m.generate_image("cat", extra=["not", "a", "dict"])),
    ("extra['hook']", lambda m: m.generate_image("cat", hook=print)),
    ("image", lambda m: m.edit_image("cat", b"")),
    ("image", lambda m: m.edit_image("cat", b"definitely not an image")),
    ("image", lambda m: m.edit_image("cat", PNG[:40])),  # truncated PNG
    ("image", lambda m: m.edit_image("cat", 12345)),
    ("image", lambda m: m.edit_image("cat", "/no/such/file.png")),
    ("mask", lambda m: m.edit_image("cat", PNG, mask=make_png(16, 16, mode="L"))),
    ("mask", lambda m: m.edit_image("cat", PNG, mask=b"garbage")),
    ("on_progress", lambda m: m.generate_image("cat", on_progress="print")),
    ("cancel", lambda m: m.generate_image("cat", cancel=True)),
    ("count", lambda m: m.generate_image_batch("cat", count=0)),
    ("count", lambda m: m.generate_image_batch("cat", count=2, seeds=[1, 2, 3])),
    ("seeds", lambda m: m.generate_image_batch("cat", seeds=[])),
    ("seeds", lambda m: m.generate_image_batch("cat", seeds=[1, -5])),
    ("control_strength", lambda m: m.generate_image("cat", control_strength=0.5)),
    ("task", lambda m: m.list_provider_models(task="painting")),
    # found by tests/test_validation_fuzz.py: each used to escape as TypeError/OverflowError/OSError/...
    ("image", lambda m: m.edit_image("cat", None)),
    ("image", lambda m: m.image_to_video(None)),
    ("image", lambda m: m.edit_image("cat", "x" * 5000)),  # a path the OS refuses (too long)
    ("image", lambda m: m.edit_image("cat", "~no-such-user-here/x.png")),
    ("guidance_scale", lambda m: m.generate_image("cat", guidance_scale=10**400)),
    ("width", lambda m: m.generate_image("cat", width=10**5000)),  # too many digits to print
    ("steps", lambda m: m.generate_image("cat", steps=2**31)),
    ("seed", lambda m: m.generate_image_batch("cat", count=2, seed="7")),
    ("count", lambda m: m.generate_image_batch("cat", count=10**12)),
    ("seeds", lambda m: m.generate_image_batch("cat", seeds=range(10**12))),
    ("angles", lambda m: m.generate_angles("cat", angles=["front", "side\ud800"])),
]


@pytest.fixture
def backend():
    return RecordingBackend(max_width=2048)


@pytest.fixture
def manager(backend):
    return VisionManager(backend=backend)


@pytest.mark.parametrize("field,call", BAD_INPUTS, ids=[f"{i}-{f}" for i, (f, _) in enumerate(BAD_INPUTS)])
def test_bad_input_is_rejected_before_the_backend(manager, backend, field, call):
    with pytest.raises(InvalidRequestError) as info:
        call(manager)
    assert info.value.field == field
    assert field.split("[")[0] in str(info.value)
    assert isinstance(info.value, ValueError)
    assert backend.calls == []


def test_decompression_bomb_is_refused(manager, backend):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, format="PNG")  # 81 M pixels, a few KB on disk
    with pytest.raises(InvalidRequestError, match="over the limit") as info:
        manager.edit_image("cat", buffer.getvalue())
    assert info.value.field == "image"
    assert backend.calls == []


def test_unknown_keywords_go_to_extra_and_callbacks_never_do(manager, backend):
    events = []
    manager.generate_image("cat", width=32, height=32, quality="high", style={"a": 1}, on_progress=events.append)
    ((task, request),) = backend.calls
    assert task == "text_to_image"
    assert request.extra == {"quality": "high", "style": {"a": 1}}
    assert request.width == 32
    assert "on_progress" not in request.extra and "cancel" not in request.extra
    assert events and events[0].phase == "start" and events[-1].phase == "end"


def test_progress_routing_reports_steps_with_elapsed_time(manager):
    events = []
    manager.generate_image("cat", steps=4, on_progress=events.append)
    steps = [e for e in events if e.phase == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert all(e.total_steps == 4 for e in steps)
    assert [round(e.fraction, 2) for e in steps] == [0.25, 0.5, 0.75, 1.0]
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(events, events[1:], strict=False))


def test_cancel_event_stops_a_running_generation(manager):
    cancel = threading.Event()

    def on_progress(event):
        if event.step == 2:
            cancel.set()

    with pytest.raises(GenerationCancelledError):
        manager.generate_image("cat", steps=5, on_progress=on_progress, cancel=cancel)


def test_metadata_provenance_is_stamped_and_embedded_in_png(manager):
    asset = manager.generate_image("cat", seed=7, width=24, height=24)
    assert isinstance(asset, GeneratedAsset)
    assert asset.metadata["backend"] == "recording"
    assert asset.metadata["task"] == "text_to_image"
    assert asset.metadata["seed"] == 7
    assert asset.metadata["elapsed_s"] >= 0
    assert read_png_metadata(asset.data) == asset.metadata
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(asset.data)).size == (24, 24)  # still a valid PNG


def test_secrets_never_reach_metadata():
    class LeakyBackend(RecordingBackend):
        def _make(self, task, request, progress_callback=None):
            asset = super()._make(task, request, progress_callback)
            leaked = {
                **asset.metadata,
                "api_key": "sk-live-123",
                "headers": {"Authorization": "Bearer sk-live-123"},
                "usage": {"total_tokens": 5},
            }
            return GeneratedAsset(asset.media_type, asset.data, asset.mime_type, leaked)

    asset = VisionManager(backend=LeakyBackend()).generate_image("cat")
    assert "sk-live-123" not in repr(asset.metadata)
    assert asset.metadata["usage"] == {"total_tokens": 5}


def test_no_backend_is_a_configuration_error():
    with pytest.raises(BackendNotConfiguredError, match="backend="):
        VisionManager().generate_image("cat")


def test_backend_capabilities_gate_tasks_and_options(png_bytes, mask_bytes):
    backend = RecordingBackend(caps=VisionBackendCapabilities(supported_tasks=("text_to_image",)))
    manager = VisionManager(backend=backend)
    with pytest.raises(CapabilityNotSupportedError, match="image_to_image"):
        manager.edit_image("cat", png_bytes)
    with pytest.raises(CapabilityNotSupportedError, match="text_to_video"):
        manager.generate_video("cat")
    with pytest.raises(CapabilityNotSupportedError, match="control"):
        manager.generate_image("cat", control_image=png_bytes)
    no_mask = VisionManager(
        backend=RecordingBackend(caps=VisionBackendCapabilities(supported_tasks=("text_to_image", "image_to_image")))
    )
    with pytest.raises(CapabilityNotSupportedError, match="mask"):
        no_mask.edit_image("cat", make_png(64, 64), mask=mask_bytes)
    assert backend.calls == [] and no_mask.backend.calls == []


def test_registry_gating_when_model_id_is_set(backend, png_bytes):
    manager = VisionManager(backend=backend, model_id="dall-e-3")
    manager.generate_image("cat")  # dall-e-3 does text_to_image
    with pytest.raises(CapabilityNotSupportedError, match="dall-e-3"):
        manager.edit_image("cat", png_bytes)
    with pytest.raises(UnknownModelError, match="not in the capability registry"):
        VisionManager(backend=backend, model_id="no-such-model").generate_image("cat")
    assert len(backend.calls) == 1


def test_image_inputs_accept_bytes_paths_and_refs(tmp_path, backend):
    store = LocalAssetStore(tmp_path / "assets")
    manager = VisionManager(backend=backend, store=store)
    path = tmp_path / "in.jpg"
    path.write_bytes(make_jpeg(40, 30))
    ref = store.store_bytes(make_png(40, 30), content_type="image/png")
    manager.edit_image("cat", path)
    manager.edit_image("cat", ref, mask=make_png(40, 30, mode="L"))
    manager.edit_image("cat", make_png(40, 30))
    assert [len(r.image) > 0 for _, r in backend.calls] == [True, True, True]
    assert backend.calls[0][1].image == path.read_bytes()
    assert backend.calls[1][1].image == store.load_bytes(ref)


def test_ref_input_without_store_is_refused(manager, tmp_path):
    ref = LocalAssetStore(tmp_path).store_bytes(make_png(), content_type="image/png")
    with pytest.raises(InvalidRequestError, match="no store"):
        manager.edit_image("cat", ref)


def test_store_returns_refs_with_provenance(tmp_path, backend):
    store = LocalAssetStore(tmp_path / "assets")
    ref = VisionManager(backend=backend, store=store).generate_image("cat", seed=3)
    assert is_artifact_ref(ref)
    assert ref["content_type"] == "image/png"
    assert store.get_metadata(ref)["metadata"]["seed"] == 3
    assert read_png_metadata(store.load_bytes(ref))["seed"] == 3


def test_batch_with_seeds_sets_the_count(manager, backend):
    assets = manager.generate_image_batch("cat", seeds=[11, 12, 13])
    assert [a.metadata["seed"] for a in assets] == [11, 12, 13]
    assert len(backend.calls) == 3


def test_batch_count_one_with_seeds_lets_the_seeds_decide(manager):
    assert [a.metadata["seed"] for a in manager.generate_image_batch("cat", count=1, seeds=[5, 6])] == [5, 6]


def test_batch_count_with_base_seed_increments(manager):
    assert [a.metadata["seed"] for a in manager.generate_image_batch("cat", count=3, seed=2**32 - 2)] == [
        2**32 - 2,
        2**32 - 1,
        0,
    ]


def test_seeds_are_checked_against_the_range_the_backend_declares():
    wide = VisionBackendCapabilities(supported_tasks=("text_to_image",), max_seed=2**40 - 1)
    manager = VisionManager(backend=RecordingBackend(caps=wide))
    assert manager.generate_image("cat", seed=2**40 - 1).metadata["seed"] == 2**40 - 1  # over 32 bits: allowed here
    for call in (
        lambda: manager.generate_image("cat", seed=2**40),
        lambda: manager.generate_image_batch("cat", seeds=[1, 2**40]),
        lambda: manager.generate_image_batch("cat", count=2, seed=2**40),
    ):
        with pytest.raises(InvalidRequestError) as info:
            call()
        assert info.value.field in ("seed", "seeds") and f"0..{2**40 - 1}" in str(info.value)
    seeds = [a.metadata["seed"] for a in manager.generate_image_batch("cat", count=2, seed=2**40 - 1)]
    assert seeds == [2**40 - 1, 0]  # a batch wraps at the backend's own limit


def test_the_backend_gets_image_inputs_decoded_once_with_their_facts(manager, backend, png_bytes, pil_decodes):
    from abstractvision.media import InspectedImage

    manager.edit_image("cat", png_bytes, mask=make_png(mode="L"))
    request = backend.calls[-1][1]
    assert isinstance(request.image, InspectedImage) and request.image == png_bytes
    assert (request.image.info.width, request.image.info.height, request.image.info.mode) == (64, 64, "RGB")
    assert isinstance(request.mask, InspectedImage) and request.mask.info.mode == "L"
    assert pil_decodes.count(png_bytes) == 1


def test_every_sync_task_method_has_an_async_twin_with_its_signature():
    import inspect

    for name in ("generate_image", "edit_image", "generate_video", "image_to_video", "generate_angles"):
        for sync_name in (name, f"{name}_batch"):
            twin = getattr(VisionManager, f"a{sync_name}")
            assert inspect.iscoroutinefunction(twin)
            assert inspect.signature(twin) == inspect.signature(getattr(VisionManager, sync_name))
    assert inspect.iscoroutinefunction(VisionManager.aupscale_image)


def test_batch_count_without_seed_gets_distinct_recorded_seeds(manager):
    seeds = [a.metadata["seed"] for a in manager.generate_image_batch("cat", count=4)]
    assert len(set(seeds)) == 4


def test_batch_partial_failure_keeps_the_items_already_made(tmp_path):
    backend = RecordingBackend(fail_on_seeds={3})
    store = LocalAssetStore(tmp_path / "assets")
    manager = VisionManager(backend=backend, store=store)
    with pytest.raises(BatchGenerationError) as info:
        manager.generate_image_batch("cat", seeds=[1, 2, 3, 4])
    error = info.value
    assert error.failed_index == 2 and error.seed == 3
    assert len(error.results) == 2 and all(is_artifact_ref(r) for r in error.results)
    assert [store.get_metadata(r)["metadata"]["seed"] for r in error.results] == [1, 2]
    assert error.__cause__ is not None and "seed 3" in str(error)


def _pixels(data: bytes) -> bytes:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).tobytes()


def test_async_twins_match_sync_results(manager, backend, png_bytes):
    async def main():
        single = await manager.agenerate_image("cat", seed=5)
        edited = await manager.aedit_image("cat", png_bytes, seed=6)
        batch = await manager.agenerate_image_batch("cat", seeds=[1, 2])
        gathered = await asyncio.gather(*(manager.agenerate_image("cat", seed=s) for s in range(8)))
        return single, edited, batch, gathered

    single, edited, batch, gathered = asyncio.run(main())
    sync = manager.generate_image("cat", seed=5)
    assert _pixels(single.data) == _pixels(sync.data)
    assert {k: v for k, v in single.metadata.items() if k != "elapsed_s"} == {
        k: v for k, v in sync.metadata.items() if k != "elapsed_s"
    }
    assert edited.metadata["task"] == "image_to_image"
    assert [a.metadata["seed"] for a in batch] == [1, 2]
    assert [a.metadata["seed"] for a in gathered] == list(range(8))


def test_async_validation_is_the_same(manager, backend):
    with pytest.raises(InvalidRequestError):
        asyncio.run(manager.agenerate_image("", seed=1))
    assert backend.calls == []


def test_sixteen_threads_share_one_manager(manager, backend):
    def work(seed):
        events = []
        asset = manager.generate_image("cat", seed=seed, steps=2, on_progress=events.append)
        return seed, asset.metadata["seed"], [e.phase for e in events]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(64)))
    assert all(seed == recorded for seed, recorded, _ in results)
    assert all(phases == ["start", "step", "step", "end"] for _, _, phases in results)
    assert len(backend.calls) == 64


def test_lifecycle_delegates(manager, backend):
    manager.preload()
    manager.unload()
    assert backend.unloads == 1
    with VisionManager(backend=backend):
        pass
    assert backend.unloads == 2  # close() defaults to unload()


def test_optional_tasks_default_to_unsupported():
    from abstractvision.backends import VisionBackend

    class Minimal(VisionBackend):
        def generate_image(self, request):
            raise AssertionError

        def edit_image(self, request):
            raise AssertionError

    backend = Minimal()
    assert backend.get_capabilities().supported_tasks == ("text_to_image", "image_to_image")
    manager = VisionManager(backend=backend)
    with pytest.raises(CapabilityNotSupportedError):
        manager.generate_video("cat")
    with pytest.raises(CapabilityNotSupportedError):
        manager.upscale_image(make_png(), scale=2)
    with pytest.raises(CapabilityNotSupportedError, match="image_upscale"):
        backend.upscale_image(None)


# ---- upscale requests are checked before the backend ----------------------------------------------------
def upscaling_backend() -> RecordingBackend:
    return RecordingBackend(caps=VisionBackendCapabilities(supported_tasks=("text_to_image", "image_upscale")))


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"scale": 2, "resolution": (64, 64)}, "resolution", "not both"),
        ({"resolution": (8, 64)}, "resolution", "smaller than the image"),
        ({"scale": 0.5}, "scale", ">= 1"),
        ({"scale": 17}, "scale", "<= 16"),
        ({"resolution": (9000, 9000)}, "resolution", "over the limit"),
        ({"prompt": "a\x00b"}, "prompt", "NUL"),
        ({"steps": 0}, "steps", ">= 1"),
    ],
)
def test_a_bad_upscale_request_is_refused_naming_the_field(params, field, words):
    backend = upscaling_backend()
    with pytest.raises(InvalidRequestError, match=words) as info:
        VisionManager(backend=backend).upscale_image(make_png(16, 16), **params)
    assert info.value.field == field and backend.calls == []


def test_a_backend_says_how_to_enable_a_task_it_does_not_offer():
    class NeedsAnUpscaler(RecordingBackend):
        def capability_hint(self, task):
            return "set upscaler=" if task == "image_upscale" else None

    with pytest.raises(CapabilityNotSupportedError, match="it supports: text_to_image, image_to_image.; set upscaler="):
        VisionManager(backend=NeedsAnUpscaler()).upscale_image(make_png(), scale=2)
    with pytest.raises(CapabilityNotSupportedError) as info:
        VisionManager(backend=NeedsAnUpscaler()).generate_video("a cat")
    assert "upscaler" not in str(info.value)


# ---- batches plan their seeds ----------------------------------------------------------------------------
class FixedDefaultSeedBackend(RecordingBackend):
    """A custom backend as many are written: a fixed default seed, and no seed in its metadata."""

    def _make(self, task, request, progress_callback=None):
        seeded = dataclasses.replace(request, seed=42 if request.seed is None else request.seed)
        asset = super()._make(task, seeded, progress_callback)
        return GeneratedAsset(asset.media_type, asset.data, asset.mime_type, {"steps": asset.metadata["steps"]})


def pixels(data: bytes) -> bytes:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).tobytes()


def test_a_batch_without_seed_draws_distinct_seeds_and_each_result_records_its_own():
    backend = FixedDefaultSeedBackend()
    assets = VisionManager(backend=backend).generate_image_batch("a cat", count=4)
    sent = [request.seed for _, request in backend.calls]
    assert None not in sent and len(set(sent)) == 4
    assert [asset.metadata["seed"] for asset in assets] == sent
    assert len({pixels(asset.data) for asset in assets}) == 4  # four pictures, not one four times


def test_a_seeded_batch_is_reproducible():
    first = VisionManager(backend=FixedDefaultSeedBackend()).generate_image_batch("a cat", count=3, seed=7)
    again = VisionManager(backend=FixedDefaultSeedBackend()).generate_image_batch("a cat", count=3, seed=7)
    assert [a.metadata["seed"] for a in first] == [7, 8, 9] == [a.metadata["seed"] for a in again]
    assert [pixels(a.data) for a in first] == [pixels(a.data) for a in again]  # metadata holds timings


def test_a_backend_without_seeds_gets_its_batch_unseeded():
    caps = VisionBackendCapabilities(supported_tasks=("text_to_image",), supports_seed=False)
    backend = RecordingBackend(caps=caps)
    VisionManager(backend=backend).generate_image_batch("a cat", count=3)
    assert [request.seed for _, request in backend.calls] == [None, None, None]


def test_the_items_a_failed_batch_made_record_their_seeds():
    backend = FixedDefaultSeedBackend(fail_on_seeds={2})
    with pytest.raises(BatchGenerationError) as info:
        VisionManager(backend=backend).generate_image_batch("a cat", seeds=[1, 2, 3])
    assert [asset.metadata["seed"] for asset in info.value.results] == [1]
