"""The official ``openai`` SDK as the client: sync, async, streaming partial images, edits with
``image[]`` and a mask, extension fields through ``extra_body``, and its typed exceptions."""

from __future__ import annotations

import asyncio
import base64
import io

import openai
import pytest

from abstractvision.media import sniff_mime_type
from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.images import make_png
from fixtures.server_api import wait_for_status

pytestmark = pytest.mark.timeout(60)

KEY = "sdk-key-1"


def sdk(server, key: str = KEY, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=30, **options)


def test_sync_generate_with_extra_body(live_server, recording_backend):
    server = live_server(recording_backend, model_id="rec-1", api_keys=(KEY,))
    with sdk(server) as client:
        result = client.images.generate(
            model="rec-1", prompt="a lighthouse", n=2, size="48x32", extra_body={"seed": 21, "steps": 5}
        )
    assert len(result.data) == 2
    for item in result.data:
        assert sniff_mime_type(base64.b64decode(item.b64_json)) == "image/png"
    assert sorted(item.seed for item in result.data) == [21, 22]  # extension fields survive the SDK's model
    requests = [request for _, request in recording_backend.calls]
    assert sorted(r.seed for r in requests) == [21, 22] and {r.steps for r in requests} == {5}
    assert {(r.width, r.height) for r in requests} == {(48, 32)}


def test_sync_url_answers_download_with_the_key(live_server, api_client, recording_backend):
    server = live_server(recording_backend, api_keys=(KEY,))
    with sdk(server) as client:
        (item,) = client.images.generate(prompt="a lighthouse", response_format="url").data
    assert item.b64_json is None and item.url.startswith(f"{server.base_url}/files/")
    assert sniff_mime_type(api_client(server, KEY).get(item.url).content) == "image/png"


def test_async_generate(live_server, recording_backend):
    server = live_server(recording_backend, model_id="rec-1", api_keys=(KEY,))

    async def main():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as client:
            return await asyncio.gather(
                *(client.images.generate(model="rec-1", prompt=f"cat {i}", extra_body={"seed": i}) for i in range(3))
            )

    results = asyncio.run(main())
    assert [result.data[0].seed for result in results] == [0, 1, 2]
    assert sorted(r.prompt for _, r in recording_backend.calls) == ["cat 0", "cat 1", "cat 2"]


def test_streaming_partial_images(live_server):
    server = live_server(SlowBackend(SlowConfig(step_s=0.01, steps=4, previews=True)), api_keys=(KEY,))
    with sdk(server) as client:
        stream = client.images.generate(prompt="a cat", stream=True, partial_images=2, extra_body={"seed": 3})
        events = list(stream)
    assert [event.type for event in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert [event.partial_image_index for event in events[:2]] == [0, 1]
    assert all(sniff_mime_type(base64.b64decode(event.b64_json)) == "image/png" for event in events)
    assert events[-1].usage.total_tokens == 0 and events[-1].output_format == "png"


def test_async_streaming(live_server):
    server = live_server(SlowBackend(SlowConfig(step_s=0.01, steps=3, previews=True)))

    async def main():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client:
            stream = await client.images.generate(prompt="a cat", stream=True, partial_images=1)
            return [event.type async for event in stream]

    assert asyncio.run(main()) == ["image_generation.partial_image", "image_generation.completed"]


def test_streaming_failure_raises_the_sdks_error(live_server):
    server = live_server(SlowBackend(SlowConfig(step_s=0.01, fail="engine")))
    with sdk(server) as client, pytest.raises(openai.APIError, match="fail=engine"):
        list(client.images.generate(prompt="a cat", stream=True, partial_images=1))


def test_edit_with_several_images_and_a_mask(live_server, recording_backend):
    server = live_server(recording_backend, api_keys=(KEY,))
    images = [make_png(24, 24, (i, 0, 0)) for i in (10, 20)]
    mask = make_png(24, 24, mode="L")
    with sdk(server) as client:
        result = client.images.edit(
            image=[("a.png", io.BytesIO(images[0]), "image/png"), ("b.png", io.BytesIO(images[1]), "image/png")],
            mask=("mask.png", io.BytesIO(mask), "image/png"),
            prompt="blend them",
            extra_body={"seed": 8, "steps": 2},
        )
    assert result.data[0].seed == 8
    task, request = recording_backend.calls[-1]
    assert task == "image_to_image" and request.image == images[0] and request.mask == mask
    assert request.extra["reference_images"] == [images[1]] and (request.seed, request.steps) == (8, 2)


def test_edit_streaming(live_server):
    server = live_server(SlowBackend(SlowConfig(step_s=0.01, steps=3, previews=True)))
    with sdk(server) as client:
        stream = client.images.edit(image=("a.png", make_png(), "image/png"), prompt="x", stream=True, partial_images=1)
        types = [event.type for event in stream]
    assert types == ["image_edit.partial_image", "image_edit.completed"]


def test_models_list(live_server, slow_backend):
    server = live_server(slow_backend, model_id="slow-xl")
    with sdk(server) as client:
        (model,) = client.models.list().data
    assert model.id == "slow-xl" and model.owned_by == "abstractvision:slow"
    assert model.tasks == ["text_to_image", "image_to_image"]  # type: ignore[attr-defined]


def test_errors_raise_the_sdks_typed_exceptions(live_server, api_client):
    server = live_server(
        SlowBackend(SlowConfig(step_s=0.05, steps=200)),
        model_id="slow-1",
        api_keys=(KEY,),
        max_queue=1,
        concurrency=1,
    )
    with sdk(server) as client:
        with pytest.raises(openai.NotFoundError, match="slow-1") as caught:
            client.images.generate(model="dall-e-3", prompt="x")
        assert caught.value.code == "model_not_found" and caught.value.param == "model"
        with pytest.raises(openai.BadRequestError, match="size") as caught:
            client.images.generate(prompt="x", size="huge")
        assert caught.value.param == "size"
        with sdk(server, key="wrong") as stranger, pytest.raises(openai.AuthenticationError):
            stranger.models.list()
        # a full queue: one running, one waiting, the next is refused
        jobs = [client.post("/jobs", body={"task": "text_to_image", "prompt": p}, cast_to=dict) for p in "ab"]
        wait_for_status(api_client(server, KEY), jobs[0]["id"], "running")
        with pytest.raises(openai.RateLimitError) as caught:
            client.images.generate(prompt="x")
        assert caught.value.code == "queue_full" and caught.value.response.headers["retry-after"]
        for job in reversed(jobs):
            client.post(f"/jobs/{job['id']}/cancel", cast_to=dict)
