"""sd-server's native job API (/sdcpp/v1: submit, poll with progress, cancel), against the loopback fake.

sd-server 0.4.5, the real server of the slow tests, has no such API (docs/reference/sd-server-0.4.5.md):
these tests pin the client against a fake of the newer upstream API (examples/server/api.md).
"""

from __future__ import annotations

import base64
import threading
import time

import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import GenerationCancelledError, ProviderError
from fixtures.images import make_png


@pytest.fixture
def sdcpp(openai_server):
    openai_server.sdcpp_jobs = True
    openai_server.models = [{"id": "sd-cpp-local", "object": "model", "owned_by": "local"}]
    return openai_server


def manager_for(server, **options):
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, poll_interval_s=0.01, **options)
    return server.track(VisionManager(backend=OpenAICompatibleVisionBackend(config=config)))


@pytest.mark.timeout(10)
def test_generation_uses_the_job_api_with_step_progress(sdcpp):
    events = []
    asset = manager_for(sdcpp).generate_image(
        "a lighthouse",
        seed=7,
        steps=3,
        guidance_scale=5.0,
        negative_prompt="fog",
        width=64,
        height=64,
        extra={"sampler": "euler"},
        on_progress=events.append,
    )
    body = sdcpp.requests_to("/sdcpp/v1/img_gen")[0].json
    assert body == {
        "prompt": "a lighthouse",
        "negative_prompt": "fog",
        "seed": 7,
        "width": 64,
        "height": 64,
        "sample_params": {"sample_steps": 3, "sample_method": "euler", "guidance": {"txt_cfg": 5.0}},
    }
    steps = [(e.step, e.total_steps) for e in events if e.phase == "step" and e.step]
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert asset.metadata["dialect"] == "sdcpp" and asset.metadata["endpoint"] == "/sdcpp/v1/img_gen"
    assert asset.metadata["job_id"].startswith("job_") and asset.metadata["seed"] == 7
    assert sdcpp.requests_to("/images/generations") == []


@pytest.mark.timeout(10)
def test_edits_send_the_init_image_mask_and_strength(sdcpp):
    image, mask = make_png(16, 16), make_png(16, 16, mode="L")
    manager_for(sdcpp, dialect="sdcpp").edit_image("blue", image, mask=mask, steps=1, extra={"strength": 0.4})
    body = sdcpp.requests_to("/sdcpp/v1/img_gen")[0].json
    assert body["init_image"] == base64.b64encode(image).decode()
    assert body["mask_image"] == base64.b64encode(mask).decode() and body["strength"] == 0.4


@pytest.mark.timeout(10)
def test_cancel_stops_the_servers_job(sdcpp):
    cancel = threading.Event()

    def on_progress(event):
        if event.phase == "step" and event.step == 2:
            cancel.set()

    started = time.monotonic()
    with pytest.raises(GenerationCancelledError):
        manager_for(sdcpp).generate_image("slow", steps=1000, on_progress=on_progress, cancel=cancel)
    assert time.monotonic() - started < 3
    (job_id,) = sdcpp.jobs
    assert [r.method for r in sdcpp.requests if r.path == f"/sdcpp/v1/jobs/{job_id}/cancel"] == ["POST"]
    assert sdcpp.jobs[job_id]["status"] == "cancelled"  # the server's job, not only the client's wait


@pytest.mark.timeout(10)
def test_job_timeout_also_cancels_the_job(sdcpp):
    from abstractvision.errors import RequestTimeoutError

    with pytest.raises(RequestTimeoutError, match="job_timeout_s"):
        manager_for(sdcpp, job_timeout_s=0.05).generate_image("slow", steps=1000)
    (job,) = sdcpp.jobs.values()
    assert job["status"] == "cancelled"


@pytest.mark.timeout(10)
def test_a_failed_job_is_a_provider_error_with_its_reason(sdcpp):
    sdcpp.sdcpp_job_fails = True
    with pytest.raises(ProviderError, match="out of memory"):
        manager_for(sdcpp).generate_image("a cat", steps=3)


@pytest.mark.timeout(10)
def test_a_server_without_the_job_api_keeps_the_openai_endpoints(openai_server):
    openai_server.models = [{"id": "sd-cpp-local", "object": "model", "owned_by": "local"}]  # sd-server 0.4.5
    asset = manager_for(openai_server).generate_image("a cat", steps=2)
    assert asset.metadata["endpoint"] == "/images/generations" and asset.metadata["dialect"] == "sdcpp"
    assert openai_server.requests_to("/sdcpp/v1/img_gen") == []


@pytest.mark.timeout(10)
def test_cancel_stops_the_servers_job_from_async_code_too(sdcpp):
    import asyncio

    cancel = threading.Event()
    manager = manager_for(sdcpp)

    def on_progress(event):
        if event.phase == "step" and event.step == 2:
            cancel.set()

    async def main():
        async with manager.backend:
            await manager.agenerate_image("slow", steps=1000, on_progress=on_progress, cancel=cancel)

    with pytest.raises(GenerationCancelledError):
        asyncio.run(main())
    (job,) = sdcpp.jobs.values()
    assert job["status"] == "cancelled"
