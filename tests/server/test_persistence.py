"""Nothing is lost across a restart, and SIGTERM shuts down in order.

``kill -9`` with jobs completed, running and queued: after a restart on the same ``--store`` the
completed ones and their files are served as before (same bytes, same owner), the running one is
``failed`` with "interrupted by restart", the queued ones run. SIGTERM: new requests are refused,
the running job gets ``--grace-s`` (it finishes if it can, else it is cancelled), queued jobs stay
queued and run after the restart.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from .fault_tools import job, submit, wait_for, wait_status, wait_step

pytestmark = pytest.mark.timeout(90)

KEY = "persistence-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def serve_args(store, *more: str) -> tuple[str, ...]:
    return (
        "--provider", "slow", "--slow-step-s", "0.05", "--concurrency", "1",
        "--store", str(store), "--api-key", KEY, *more,
    )  # fmt: skip


def file_bytes(base_url: str, file_id: str) -> bytes:
    reply = httpx.get(f"{base_url}/files/{file_id}", headers=AUTH, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.content


def refused(base_url: str) -> bool:
    """A new request is refused: the connection (the listener is closed) or with 503."""
    try:
        reply = httpx.post(f"{base_url}/images/generations", json={"prompt": "late"}, headers=AUTH, timeout=5)
    except httpx.TransportError:
        return True
    return reply.status_code == 503


def test_kill_9_loses_nothing_completed_fails_the_running_job_and_runs_the_queued_ones(server_process, tmp_path):
    args = serve_args(tmp_path / "store")
    first = server_process(*args)
    done = submit(first.base_url, AUTH, prompt="done", seed=1, steps=1)
    result = wait_status(first.base_url, done, "completed", headers=AUTH)["result"]
    sync = httpx.post(
        f"{first.base_url}/images/generations",
        json={"prompt": "sync", "seed": 2, "steps": 1, "response_format": "url"},
        headers=AUTH,
        timeout=30,
    )
    assert sync.status_code == 200, sync.text
    sync_file = sync.json()["data"][0]["url"].rsplit("/", 1)[1]
    before = {item["file_id"]: file_bytes(first.base_url, item["file_id"]) for item in result}
    before[sync_file] = file_bytes(first.base_url, sync_file)
    running = submit(first.base_url, AUTH, prompt="running", steps=400)
    wait_step(first.base_url, running, headers=AUTH)
    queued = [submit(first.base_url, AUTH, prompt=f"queued {i}", seed=10 + i, steps=1) for i in range(2)]
    assert [job(first.base_url, i, AUTH)["status"] for i in queued] == ["queued", "queued"]

    first.kill()
    again = server_process(*args)
    assert job(again.base_url, done, AUTH)["result"] == result
    assert {file_id: file_bytes(again.base_url, file_id) for file_id in before} == before
    crashed = job(again.base_url, running, AUTH)
    assert crashed["status"] == "failed" and crashed["error"]["message"] == "interrupted by restart"
    seeds = [wait_status(again.base_url, i, "completed", headers=AUTH)["result"][0]["seed"] for i in queued]
    assert seeds == [10, 11]


def test_sigterm_refuses_new_requests_cancels_a_long_job_after_the_grace_period_and_keeps_the_queue(
    server_process, tmp_path
):
    args = serve_args(tmp_path / "store", "--grace-s", "1")
    first = server_process(*args)
    answers: list[httpx.Response] = []
    body = {"prompt": "too long for the grace period", "steps": 400}  # 20 s
    client = threading.Thread(target=lambda: answers.append(_generate(first.base_url, body)), daemon=True)
    client.start()
    long = wait_for(lambda: [v for v in _jobs(first.base_url) if v["status"] == "running"], "the running job")
    long = long[0]["id"]
    wait_step(first.base_url, long, headers=AUTH)
    queued = [submit(first.base_url, AUTH, prompt=f"queued {i}", seed=20 + i, steps=1) for i in range(2)]
    waiting: list[httpx.Response] = []  # a sync client behind them: nobody could collect its job after a restart
    body = {"prompt": "queued, sync", "steps": 1}
    behind = threading.Thread(target=lambda: waiting.append(_generate(first.base_url, body)), daemon=True)
    behind.start()
    wait_for(lambda: len(_jobs(first.base_url)) == 4, "the sync client's job")
    signalled = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    wait_for(lambda: refused(first.base_url), "the server to refuse new requests", timeout_s=5)
    behind.join(timeout=20)
    assert waiting and waiting[0].status_code == 503, waiting and waiting[0].text  # told at once, not cut off
    assert waiting[0].json()["error"]["code"] == "shutting_down"
    assert time.monotonic() - signalled < 3  # not after uvicorn's wait for connections (grace + 5 s)
    client.join(timeout=20)
    assert answers and answers[0].status_code == 503, answers and answers[0].text
    assert answers[0].json()["error"]["code"] == "cancelled"
    first.process.wait(timeout=20)
    assert time.monotonic() - signalled < 5, first.output()  # 1 s of grace, then the engine stops at its next step

    again = server_process(*args)
    assert job(again.base_url, long, AUTH)["status"] == "cancelled"
    seeds = [wait_status(again.base_url, i, "completed", headers=AUTH)["result"][0]["seed"] for i in queued]
    assert seeds == [20, 21]


def test_sigterm_lets_a_short_running_job_finish_and_answer_its_client(server_process, tmp_path):
    args = serve_args(tmp_path / "store", "--grace-s", "10")
    first = server_process(*args)
    answers: list[httpx.Response] = []

    body = {"prompt": "short enough", "seed": 5, "steps": 30}  # 1.5 s
    thread = threading.Thread(target=lambda: answers.append(_generate(first.base_url, body)), daemon=True)
    thread.start()
    running = wait_for(lambda: [v for v in _jobs(first.base_url) if v["status"] == "running"], "the running job")[0]
    queued = submit(first.base_url, AUTH, prompt="queued", steps=400)  # longer than the grace period
    first.process.send_signal(signal.SIGTERM)
    thread.join(timeout=20)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    assert answers[0].json()["data"][0]["seed"] == 5
    first.process.wait(timeout=20)

    again = server_process(*args)
    assert job(again.base_url, running["id"], AUTH)["status"] == "completed"
    assert job(again.base_url, queued, AUTH)["status"] in ("queued", "running")  # not started during shutdown
    wait_step(again.base_url, queued, headers=AUTH)


def _generate(base_url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{base_url}/images/generations", json=body, headers=AUTH, timeout=30)


def _jobs(base_url: str) -> list[dict]:
    return httpx.get(f"{base_url}/jobs", headers=AUTH, timeout=10).json()["data"]
