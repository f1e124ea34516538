"""``serve --ray`` with a real engine: the tiny random-weight Diffusers pipeline on two replicas.

Two copies of the pipeline folder are two allow-listed models; each replica loads the one it is
sent (sticky routing), a cancel stops the denoising loop on the replica far below its step total,
and a replica killed mid-generation fails only its job while Ray brings a new one.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import time

import httpx
import openai
import pytest

from abstractvision.media import sniff_mime_type
from fixtures.server_api import wait_for, wait_for_status

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def diffusers_app(ray_serve, tiny_diffusers_pipeline, tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "ray-tiny-b"
    if not folder.exists():
        shutil.copytree(tiny_diffusers_pipeline, folder)
    models = (str(tiny_diffusers_pipeline), str(folder))
    app = ray_serve.deploy(
        provider="diffusers", models=models, settings={"device": "cpu"}, replicas=2, max_models_per_replica=1
    )
    return app, models


def test_each_replica_serves_the_model_it_was_sent_to_the_openai_sdk(diffusers_app):
    app, models = diffusers_app
    with openai.OpenAI(base_url=app.base_url, api_key="unused", max_retries=0, timeout=120) as api:
        assert [model.id for model in api.models.list().data] == list(models)
        for model in models * 2:
            (item,) = api.images.generate(model=model, prompt="a cat", size="64x64", extra_body={"steps": 2}).data
            assert sniff_mime_type(base64.b64decode(item.b64_json)) == "image/png"
            assert item.metadata["model"] == model  # type: ignore[attr-defined]
    held = sorted(tuple(state["models"]) for state in app.replica_states(2, timeout_s=60))
    assert held == sorted((model,) for model in models)


def test_cancel_stops_the_denoising_loop_on_the_replica(diffusers_app):
    app, models = diffusers_app
    total = 500  # ~70 ms a step on two CPU cores: over half a minute in all
    with httpx.Client(base_url=app.url, timeout=60) as http:
        reply = http.post("/v1/jobs", json={"task": "text_to_image", "prompt": "x", "model": models[0], "steps": total})
        job = reply.json()
        at = wait_for(lambda: http.get(f"/v1/jobs/{job['id']}").json()["progress"]["step"], timeout_s=60)
        cancelled_at = time.monotonic()
        assert http.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
        last = wait_for(lambda: _ended_run(app, models[0]), timeout_s=30)
        assert last["status"] == "cancelled" and last["total"] == total
        assert last["step"] < at + 50 < total, (at, last)
        assert time.monotonic() - cancelled_at < 15


def test_a_replica_killed_mid_generation_fails_only_its_job(diffusers_app):
    app, models = diffusers_app
    states = app.replica_states(2, timeout_s=60)
    victim = next(state for state in states if models[0] in state["models"])
    with httpx.Client(base_url=app.url, timeout=120) as http:
        doomed, spared = (
            http.post("/v1/jobs", json={"task": "text_to_image", "prompt": "x", "model": model, "steps": 60}).json()
            for model in models
        )
        for job in (doomed, spared):
            wait_for(lambda job=job: http.get(f"/v1/jobs/{job['id']}").json()["progress"]["step"], timeout_s=60)
        os.kill(victim["pid"], signal.SIGKILL)
        failed = wait_for_status(http, doomed["id"], "failed", timeout_s=30)
        assert failed["error"]["code"] == "engine_error" and "died" in failed["error"]["message"]
        assert wait_for_status(http, spared["id"], "completed", timeout_s=120)["result"]
        # a new replica takes the model; the service answers without a restart
        reply = http.post("/v1/images/generations", json={"prompt": "x", "model": models[0], "steps": 2})
        assert reply.status_code == 200, reply.text
    assert victim["pid"] not in {state["pid"] for state in app.replica_states(2, timeout_s=60)}


def _ended_run(app, model: str) -> dict | None:
    """The last run of the replica holding ``model`` once it ended (its engine thread returned)."""
    (run,) = (state["last_run"] for state in app.replica_states(2) if model in state["models"])
    return run if run["status"] != "running" else None
