"""Faults: engines that fail or crash, and clients that hang up. The server answers each with OpenAI's
error object and keeps serving; a client that leaves takes its job with it (out of the queue, or
its engine stopped at the next step)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import httpx
import pytest

from abstractvision.testing.slow import SlowBackend, SlowConfig

from .fault_tools import new_job, raw_post, submit, wait_for, wait_status, wait_step

pytestmark = pytest.mark.timeout(60)


def generate(server, **fields) -> httpx.Response:
    return httpx.post(f"{server.base_url}/images/generations", json={"prompt": "a cat", **fields}, timeout=30)


def assert_serves(server) -> None:
    """The server still generates (the engine is free again)."""
    reply = generate(server, steps=1, size="64x64")
    assert reply.status_code == 200, reply.text


# ---- engines that fail -----------------------------------------------------------------------------
def test_an_engine_error_is_a_500_that_says_so_and_the_next_request_is_served(live_server):
    backend = SlowBackend(SlowConfig(step_s=0.01, fail="engine"))
    server = live_server(backend)
    reply = generate(server)
    assert reply.status_code == 500
    error = reply.json()["error"]
    assert error["type"] == "server_error" and error["code"] == "engine_error"
    assert "failed on purpose" in error["message"]
    backend.config = dataclasses.replace(backend.config, fail=None)  # the engine recovers
    assert_serves(server)


def test_an_unexpected_exception_is_a_500_without_the_servers_insides(live_server):
    backend = SlowBackend(SlowConfig(step_s=0.01, fail="bug"))
    server = live_server(backend)
    reply = generate(server)
    assert reply.status_code == 500
    error = reply.json()["error"]
    assert error["code"] == "internal_error" and error["type"] == "server_error"
    for inside in ("RuntimeError", "bug", "slow", "Traceback", ".py"):
        assert inside not in reply.text
    backend.config = dataclasses.replace(backend.config, fail=None)
    assert_serves(server)


@pytest.mark.parametrize("mode, named", [("killed", "signal 9 (SIGKILL)"), ("fail", "exited with code 3")])
def test_a_crashing_sd_cli_is_a_500_naming_how_it_ended(live_server, fake_sd_cli, model_file, mode, named):
    from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend

    backend = StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path), mode="cli")
    server = live_server(backend)
    fake_sd_cli.behave(mode)
    reply = generate(server, steps=2, size="64x64")
    assert reply.status_code == 500, reply.text
    error = reply.json()["error"]
    assert error["code"] == "engine_error" and named in error["message"]
    fake_sd_cli.behave("ok")
    assert_serves(server)
    assert len(fake_sd_cli.runs()) == 2


# ---- clients that hang up ----------------------------------------------------------------------------
def test_a_sync_client_that_hangs_up_takes_its_queued_job_out_of_the_queue(live_server):
    backend = SlowBackend(SlowConfig(step_s=0.05))
    server = live_server(backend, concurrency=1)
    blocker = submit(server.base_url, prompt="keeps the engine busy", steps=400)
    wait_step(server.base_url, blocker)
    client = raw_post(server.url, "/v1/images/generations", {"prompt": "abandoned while queued", "steps": 1})
    abandoned = new_job(server.base_url, {blocker}, status="queued")["id"]
    client.close()
    view = wait_status(server.base_url, abandoned, "cancelled", timeout_s=5)
    assert view["error"]["code"] == "cancelled"
    assert server.service.queue.live(abandoned) is None
    httpx.post(f"{server.base_url}/jobs/{blocker}/cancel", timeout=10)
    wait_status(server.base_url, blocker, "cancelled", timeout_s=5)
    assert backend.runs == 1  # the abandoned job never reached the engine


@pytest.mark.parametrize("stream", [False, True], ids=["sync", "stream"])
def test_a_client_that_hangs_up_stops_its_running_job_at_the_next_step(live_server, stream):
    backend = SlowBackend(SlowConfig(step_s=0.05))
    server = live_server(backend, concurrency=1)
    body = {"prompt": "abandoned while running", "steps": 400, "stream": stream}
    client = raw_post(server.url, "/v1/images/generations", body)
    running = new_job(server.base_url, set(), status="running")["id"]
    wait_step(server.base_url, running, step=2)
    hung_up = time.monotonic()
    client.close()
    view = wait_status(server.base_url, running, "cancelled", timeout_s=5)
    assert time.monotonic() - hung_up < 3  # of the 20 s the run would take
    assert view["error"]["code"] == "cancelled"
    assert backend.stopped_at and backend.stopped_at[0] < 100, backend.stopped_at  # of 400 steps
    assert backend.active == 0
    assert_serves(server)


def test_a_client_that_hangs_up_kills_its_running_sd_cli(live_server, fake_sd_cli, model_file):
    from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend

    backend = StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path), mode="cli")
    server = live_server(backend)
    fake_sd_cli.behave("hang")
    client = raw_post(server.url, "/v1/images/generations", {"prompt": "a cat", "steps": 2, "size": "64x64"})
    running = new_job(server.base_url, set(), status="running")["id"]
    text = wait_for(lambda: fake_sd_cli.pids.exists() and fake_sd_cli.pids.read_text().strip(), "sd-cli's pids")
    client.close()
    wait_status(server.base_url, running, "cancelled", timeout_s=5)
    for pid in map(int, text.split()):
        wait_for(lambda pid=pid: _gone(pid), f"sd-cli process {pid} to end", timeout_s=5)
    fake_sd_cli.behave("ok")
    assert_serves(server)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_client_that_hangs_up_stops_a_running_diffusers_job(live_server, tiny_diffusers_backend):
    server = live_server(tiny_diffusers_backend, preload=True)
    total = 500  # ~70 ms each on two CPU cores: over half a minute in all
    body = {"prompt": "a cat", "steps": total, "size": "64x64", "seed": 1}
    client = raw_post(server.url, "/v1/images/generations", body)
    running = new_job(server.base_url, set(), status="running", timeout_s=60)["id"]
    steps: list[int] = []
    final: list[dict] = []
    follower = threading.Thread(target=_follow, args=(server.base_url, running, steps, final), daemon=True)
    follower.start()
    wait_for(lambda: len(steps) >= 3 or final, "three step events", timeout_s=60)
    assert not final, f"the job ended before the client left: {final}"
    client.close()
    follower.join(timeout=30)
    assert not follower.is_alive(), "the job's event stream did not end after the client left"
    assert final and final[0]["type"] == "cancelled", final
    assert max(steps) < total // 4, f"the step callback ran to step {max(steps)} of {total}"
    assert steps == sorted(steps)
    assert wait_status(server.base_url, running, "cancelled")["error"]["code"] == "cancelled"
    assert_serves(server)


def _follow(base_url: str, job_id: str, steps: list[int], final: list[dict]) -> None:
    """Read the job's events: every step number into ``steps``, the final event into ``final``."""
    with httpx.stream("GET", f"{base_url}/jobs/{job_id}/events", timeout=60) as reply:
        for line in reply.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event["type"] == "step":
                steps.append(event["progress"]["step"])
            elif event["type"] in ("completed", "failed", "cancelled"):
                final.append(event)
                return


def _gone(pid: int) -> bool:
    """Dead, or a zombie waiting for its (re-)parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
