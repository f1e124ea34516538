"""This project's own OpenAI-compatible backend as the client of ``abstractvision serve``: ``auto``
recognises the server, the portable controls arrive at the served backend, edits travel as
multipart, previews stream back as progress and a cancel stops the engine on the server."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import AdapterNotAvailableError, GenerationCancelledError, ProviderError, RateLimitError
from abstractvision.media import inspect_image
from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.images import make_png
from fixtures.loras import pixel
from fixtures.server_api import wait_for, wait_for_status

pytestmark = pytest.mark.timeout(60)

KEY = "client-key-1"


@pytest.fixture
def client_for():
    """``client_for(server, **config)``: a manager over an OpenAI backend pointed at ``server``, closed after."""
    managers: list[VisionManager] = []

    def make(server, **options) -> VisionManager:
        options.setdefault("model_id", server.service.model_id)
        config = OpenAICompatibleBackendConfig(base_url=server.base_url, **options)
        managers.append(VisionManager(backend=OpenAICompatibleVisionBackend(config=config)))
        return managers[-1]

    yield make
    for manager in managers:
        manager.close()


def test_auto_recognises_the_server_and_the_controls_arrive(live_server, client_for, recording_backend):
    server = live_server(recording_backend, model_id="rec-1", api_keys=(KEY,))
    manager = client_for(server, api_key=KEY)
    asset = manager.generate_image(
        "a lighthouse",
        seed=5,
        steps=7,
        guidance_scale=3.5,
        negative_prompt="fog",
        width=48,
        height=32,
        extra={"sampler": "euler"},
    )
    assert asset.metadata["dialect"] == "abstractvision" and asset.metadata["seed"] == 5
    info = inspect_image(asset.data)
    assert (info.width, info.height) == (48, 32)
    task, request = recording_backend.calls[-1]
    assert task == "text_to_image" and request.prompt == "a lighthouse"
    assert (request.seed, request.steps, request.guidance_scale, request.negative_prompt) == (5, 7, 3.5, "fog")
    assert (request.width, request.height, request.extra) == (48, 32, {"sampler": "euler"})


def test_a_batch_sends_one_seed_per_image(live_server, client_for, recording_backend):
    server = live_server(recording_backend)
    assets = client_for(server).generate_image_batch("a cat", count=3, seed=10, steps=2)
    assert [asset.metadata["seed"] for asset in assets] == [10, 11, 12]
    assert sorted(request.seed for _, request in recording_backend.calls) == [10, 11, 12]
    assert {request.steps for _, request in recording_backend.calls} == {2}


def test_async_calls(live_server, client_for, recording_backend):
    server = live_server(recording_backend)
    manager = client_for(server)

    async def main():
        try:
            return await asyncio.gather(*(manager.agenerate_image("a cat", seed=i, steps=1) for i in range(3)))
        finally:
            await manager.aclose()

    assets = asyncio.run(main())
    assert [asset.metadata["seed"] for asset in assets] == [0, 1, 2]
    assert sorted(request.seed for _, request in recording_backend.calls) == [0, 1, 2]


def test_edits_travel_as_multipart(live_server, client_for, recording_backend):
    server = live_server(recording_backend, api_keys=(KEY,))
    image, mask = make_png(24, 24, (9, 9, 9)), make_png(24, 24, mode="L")
    asset = client_for(server, api_key=KEY).edit_image(
        "make it blue", image, mask=mask, seed=4, steps=2, extra={"strength": 0.3}
    )
    assert asset.metadata["dialect"] == "abstractvision"
    task, request = recording_backend.calls[-1]
    assert task == "image_to_image" and request.image == image and request.mask == mask
    assert (request.seed, request.steps, request.extra) == (4, 2, {"strength": 0.3})


def test_previews_stream_back_as_progress(live_server, client_for):
    server = live_server(SlowBackend(SlowConfig(step_s=0.01, steps=4, previews=True)))
    events = []
    asset = client_for(server).generate_image("a cat", seed=3, extra={"partial_images": 2}, on_progress=events.append)
    previews = [event for event in events if event.phase == "preview"]
    assert len(previews) == 2 and all(event.preview.startswith(b"\x89PNG") for event in previews)
    assert events[0].phase == "start" and events[-1].phase == "end"
    assert asset.data.startswith(b"\x89PNG")


def test_a_cancel_stops_the_engine_on_the_server(live_server, client_for, api_client):
    backend = SlowBackend(SlowConfig(step_s=0.05, steps=200))
    server = live_server(backend)
    http = api_client(server)
    manager = client_for(server, max_retries=0)
    cancel, outcome = threading.Event(), []
    worker = threading.Thread(target=_call, args=(manager, cancel, outcome), daemon=True)
    worker.start()
    job = wait_for(lambda: http.get("/v1/jobs").json()["data"])[0]
    wait_for(lambda: http.get(f"/v1/jobs/{job['id']}").json()["progress"]["step"])
    started = time.monotonic()
    cancel.set()
    worker.join(timeout=10)
    assert isinstance(outcome[0], GenerationCancelledError) and time.monotonic() - started < 2
    assert wait_for_status(http, job["id"], "cancelled")["status"] == "cancelled"
    assert len(backend.stopped_at) == 1 and backend.stopped_at[0] < 200


def test_server_errors_reach_the_client_typed(live_server, client_for, api_client):
    server = live_server(SlowBackend(SlowConfig(step_s=0.05, steps=200)), model_id="slow-1", max_queue=1, concurrency=1)
    with pytest.raises(ProviderError) as caught:
        client_for(server, model_id="other-model").generate_image("a cat")
    assert caught.value.status == 404 and "slow-1" in str(caught.value)
    manager = client_for(server, max_retries=0)
    with pytest.raises(ProviderError) as caught:
        manager.generate_image("a cat", width=5000, height=5000)
    assert caught.value.status == 413 and "pixels" in str(caught.value)
    # fill the queue (one running, one waiting) with requests that are cancelled at the end
    stop, outcomes = threading.Event(), []
    busy = [threading.Thread(target=_call, args=(manager, stop, outcomes), daemon=True) for _ in range(2)]
    for thread in busy:
        thread.start()
    http = api_client(server)
    wait_for(lambda: {job["status"] for job in http.get("/v1/jobs").json()["data"]} == {"running", "queued"})
    with pytest.raises(RateLimitError) as caught:
        manager.generate_image("a cat")
    assert caught.value.status == 429 and caught.value.retry_after is not None
    stop.set()
    for thread in busy:
        thread.join(timeout=10)
    assert len(outcomes) == 2 and all(isinstance(exc, GenerationCancelledError) for exc in outcomes)


def _call(manager: VisionManager, cancel: threading.Event, outcomes: list) -> None:
    """One generation that ``cancel`` ends; what it raised goes to ``outcomes``."""
    try:
        manager.generate_image("a cat", cancel=cancel)
    except Exception as exc:  # noqa: BLE001 - checked by the test thread
        outcomes.append(exc)


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_the_seed_the_server_drew_reaches_the_client(live_server, client_for, recording_backend, streamed):
    """Without a seed the server's engine draws one and says which in the item; the client records it,
    so the picture can be made again."""
    server = live_server(recording_backend)
    extra = {"partial_images": 1} if streamed else {}
    asset = client_for(server).generate_image("a cat", steps=1, extra=extra)
    [(_, request)] = recording_backend.calls
    assert request.seed is None  # the client sent none
    [job] = server.service.records.list("anonymous")
    assert asset.metadata["seed"] == job["result"][0]["seed"]
    assert isinstance(asset.metadata["seed"], int)


def test_adapters_travel_as_the_servers_lora_field_and_are_checked_before_anything_runs(
    live_server, client_for, lora_folder
):
    """The ``abstractvision`` dialect carries adapters (generations and multipart edits) as the server's
    ``lora`` field, lists them from ``GET /v1/adapters``, and refuses an unlisted one client-side, typed."""

    def slow_backend() -> SlowBackend:
        return SlowBackend(SlowConfig(step_s=0.0, steps=2, lora_dir=str(lora_folder)))

    server = live_server(slow_backend(), model_id="slow-1")
    manager = client_for(server)
    assert manager.backend.get_capabilities().supports_lora
    assert [info.id for info in manager.list_provider_adapters()] == ["glow", "ink"]

    direct = VisionManager(backend=slow_backend())
    for adapters in (["ink:0.5"], [{"source": "glow", "scale": 2.0}, "ink"]):
        remote = manager.generate_image("a", seed=3, width=16, height=16, lora_adapters=adapters)
        local = direct.generate_image("a", seed=3, width=16, height=16, lora_adapters=adapters)
        assert pixel(remote.data) == pixel(local.data)
        assert remote.metadata["lora_adapters"] == local.metadata["lora_adapters"]
    plain = manager.generate_image("a", seed=3, width=16, height=16)
    assert pixel(plain.data) == pixel(direct.generate_image("a", seed=3, width=16, height=16).data)
    assert pixel(plain.data) != pixel(remote.data)

    image = make_png(16, 16)
    edited = manager.edit_image("a", image, seed=3, lora_adapters=["ink:0.5"])
    assert pixel(edited.data) == pixel(direct.edit_image("a", image, seed=3, lora_adapters=["ink:0.5"]).data)

    jobs_before = httpx.get(f"{server.base_url}/jobs").json()["data"]
    for bad in (["missing"], [str(lora_folder.parent / "outside.safetensors")]):
        with pytest.raises(AdapterNotAvailableError, match=r"lora_adapters\[0\]\.source: abstractvision serve offers"):
            manager.generate_image("a", seed=3, lora_adapters=bad)
    assert httpx.get(f"{server.base_url}/jobs").json()["data"] == jobs_before  # no job was made
