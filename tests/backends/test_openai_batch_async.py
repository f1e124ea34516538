"""Batches (the provider's ``n`` vs one call per seed) and native async, against the loopback server."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import BatchGenerationError, ProviderError
from fixtures.images import make_png
from fixtures.openai_server import Reply, server_png

GENERATIONS = "/images/generations"


def manager_for(server, model_id="sd-local", **backend_args):
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, model_id=model_id)
    return server.track(VisionManager(backend=OpenAICompatibleVisionBackend(config=config, **backend_args)))


def sent(server, name):
    return [r.field(name) for r in server.requests_to(GENERATIONS)]


def test_a_model_without_seeds_makes_an_unseeded_batch_with_n(openai_server):
    assets = manager_for(openai_server, "gpt-image-1").generate_image_batch("a cat", count=3)
    assert sent(openai_server, "n") == [3] and sent(openai_server, "seed") == [None]
    assert len(assets) == 3 and len({a.data for a in assets}) == 3  # three distinct images came back
    assert all(a.metadata["task"] == "text_to_image" for a in assets)


def test_a_server_that_takes_seeds_gets_distinct_drawn_seeds_each_recorded(openai_server):
    """A server with a fixed default seed would make one picture four times; drawn seeds cannot."""
    assets = manager_for(openai_server).generate_image_batch("a cat", count=4, width=8, height=8)
    seeds = sent(openai_server, "seed")
    assert sent(openai_server, "n") == [None] * 4 and len(set(seeds)) == 4 and None not in seeds
    assert [a.metadata["seed"] for a in assets] == seeds


def test_batch_with_seeds_sends_one_call_per_seed(openai_server):
    assets = manager_for(openai_server).generate_image_batch("a cat", seeds=[11, 12])
    assert sent(openai_server, "seed") == [11, 12] and sent(openai_server, "n") == [None, None]
    assert [a.metadata["seed"] for a in assets] == [11, 12]


def test_batch_is_chunked_by_the_model_limit(openai_server):
    assets = manager_for(openai_server, "gpt-image-1").generate_image_batch("a cat", count=12)
    assert sent(openai_server, "n") == [10, 2] and len(assets) == 12


def test_dall_e_3_batch_falls_back_to_single_calls(openai_server):
    assets = manager_for(openai_server, "dall-e-3").generate_image_batch("a cat", count=2)
    assert sent(openai_server, "n") == [None, None] and len(assets) == 2


def test_server_ignoring_n_is_topped_up(openai_server):
    import base64

    one = base64.b64encode(server_png(8, 8)).decode()
    openai_server.enqueue(GENERATIONS, Reply(json={"created": 1, "data": [{"b64_json": one}]}))
    assets = manager_for(openai_server, "gpt-image-1").generate_image_batch("a cat", count=3)
    assert sent(openai_server, "n") == [3, 2] and len(assets) == 3


def test_edit_batch_uses_n(openai_server):
    assets = manager_for(openai_server, "gpt-image-1").edit_image_batch("blue", make_png(16, 16), count=2)
    assert openai_server.last.form["n"] == ["2"] and len(assets) == 2


def test_partial_failure_keeps_the_items_made(openai_server):
    openai_server.enqueue(GENERATIONS, Reply(json=None), Reply(status=400, json={"error": {"message": "nope"}}))
    with pytest.raises(BatchGenerationError) as info:
        manager_for(openai_server).generate_image_batch("a cat", seeds=[1, 2, 3])
    error = info.value
    assert error.failed_index == 1 and error.seed == 2
    assert len(error.results) == 1 and error.results[0].metadata["seed"] == 1
    assert isinstance(error.__cause__, ProviderError) and error.__cause__.status == 400


# ---- async --------------------------------------------------------------------------------------------
def test_async_uses_the_async_client_and_runs_concurrently(openai_server):
    openai_server.latency_s = 0.3
    seen = []

    async def record(request):
        seen.append(request.url.path)

    async def main():
        async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
            manager = manager_for(openai_server, async_http_client=client)
            started = time.perf_counter()
            assets = await asyncio.gather(*(manager.agenerate_image("a cat", seed=i) for i in range(6)))
            return assets, time.perf_counter() - started

    assets, elapsed = asyncio.run(main())
    assert [a.metadata["seed"] for a in assets] == list(range(6))
    # the server is asked what it is once (models, then LocalAI's /version), whatever the concurrency
    assert seen == ["/v1/models", "/version"] + ["/v1/images/generations"] * 6
    assert elapsed < 1.5  # two 0.3 s probe answers, then six 0.3 s answers overlapped


def test_async_batch_edit_and_retry(openai_server):
    openai_server.enqueue(GENERATIONS, Reply(status=503, json={"error": "busy"}, headers={"Retry-After": "0"}))
    manager = manager_for(openai_server)

    async def main():
        async with manager.backend:  # closes this loop's async client
            batch = await manager.agenerate_image_batch("a cat", count=2)
            edited = await manager.aedit_image("blue", make_png(16, 16), seed=3)
        return batch, edited

    async def again():
        await manager.agenerate_image("again")
        await manager.backend.aclose()

    batch, edited = asyncio.run(main())
    seeds = sent(openai_server, "seed")  # the 503 was retried with the same drawn seed
    assert len(batch) == 2 and len(seeds) == 3 and seeds[0] == seeds[1] != seeds[2]
    assert edited.metadata["seed"] == 3 and openai_server.last.form["seed"] == ["3"]
    asyncio.run(again())  # a new event loop gets its own client


def test_async_fault_is_the_same_typed_error(openai_server):
    openai_server.enqueue(GENERATIONS, Reply(body=b"{broken"))
    from abstractvision.errors import InvalidProviderResponseError

    async def main():
        async with manager_for(openai_server).backend as backend:
            await VisionManager(backend=backend).agenerate_image("a cat")

    with pytest.raises(InvalidProviderResponseError):
        asyncio.run(main())


def test_a_callers_sync_client_is_used_and_left_open(openai_server):
    seen = []
    with httpx.Client(event_hooks={"request": [lambda r: seen.append(r.method)]}) as client:
        manager = manager_for(openai_server, http_client=client)
        manager.generate_image("a cat")
        manager.generate_image("a dog")
        manager.close()
        assert seen == ["GET", "GET", "POST", "POST"] and not client.is_closed  # the dialect probe, once


def test_one_backend_shared_by_threads(openai_server):
    from concurrent.futures import ThreadPoolExecutor

    manager = manager_for(openai_server)
    with ThreadPoolExecutor(8) as pool:
        assets = list(pool.map(lambda i: manager.generate_image("a cat", seed=i), range(24)))
    assert sorted(a.metadata["seed"] for a in assets) == list(range(24))
    assert len(openai_server.requests_to("/models")) == 1  # one dialect probe for 8 threads


def test_a_server_spoken_to_in_the_openai_dialect_gets_its_batch_unseeded(openai_server):
    """The dialect, not only the model id, says the server takes no seeds: no seeds drawn to be dropped."""
    config = OpenAICompatibleBackendConfig(base_url=openai_server.base_url, model_id="sd-local", dialect="openai")
    manager = openai_server.track(VisionManager(backend=OpenAICompatibleVisionBackend(config=config)))
    assets = manager.generate_image_batch("a cat", count=3)
    assert sent(openai_server, "n") == [3] and sent(openai_server, "seed") == [None] and len(assets) == 3
