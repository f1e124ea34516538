"""The access log of ``abstractvision serve``: one line per request (method, path, status, duration,
job id), never a key, and the prompt only at debug level."""

from __future__ import annotations

import re

import httpx
import pytest

from .fault_tools import wait_for

pytestmark = pytest.mark.timeout(60)

KEY = "sk-access-log-secret-4f9a"
WRONG_KEY = "sk-not-a-key-of-this-server-77c1"
PROMPT = "a violet heron reading a newspaper"
ACCESS = re.compile(r"abstractvision\.server\.access: (\S+) (\S+) (\d{3}) (\d+\.\d)ms(?: job=([0-9a-f]{32}))?$")


def access_lines(output: str) -> list[tuple[str, ...]]:
    return [match.groups() for line in output.splitlines() if (match := ACCESS.search(line))]


def exercise(server) -> str:
    """A sync generation, a job, its poll, its events and a refused key; the job's id."""
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {"prompt": PROMPT, "negative_prompt": "blurry", "steps": 1}
    assert httpx.post(f"{server.base_url}/images/generations", json=body, headers=auth, timeout=30).status_code == 200
    reply = httpx.post(f"{server.base_url}/jobs", json={"task": "text_to_image", **body}, headers=auth, timeout=30)
    job_id = reply.json()["id"]
    wait_for(
        lambda: httpx.get(f"{server.base_url}/jobs/{job_id}", headers=auth, timeout=10).json()["status"] == "completed",
        "the job to complete",
    )
    assert httpx.get(f"{server.base_url}/jobs/{job_id}/events", headers=auth, timeout=10).status_code == 200
    bad = httpx.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {WRONG_KEY}"}, timeout=10)
    assert bad.status_code == 401
    return job_id


def test_one_line_per_request_with_its_job_and_neither_keys_nor_prompts_at_info(server_process):
    server = server_process("--provider", "slow", "--slow-step-s", "0.01", "--api-key", KEY, "--log-level", "info")
    job_id = exercise(server)
    last = ("GET", "/v1/models", "401")  # the last request's line
    lines = wait_for(lambda: (got := access_lines(server.output())) and got[-1][:3] == last and got, "its line")
    requests = [line for line in lines if line[1] != "/healthz"]  # the fixture's readiness polls
    assert [(method, path, status) for method, path, status, _, _ in requests][:3] == [
        ("POST", "/v1/images/generations", "200"),
        ("POST", "/v1/jobs", "202"),
        ("GET", f"/v1/jobs/{job_id}", "200"),
    ]
    by_path = {(method, path): job for method, path, _, _, job in requests}
    assert re.fullmatch(r"[0-9a-f]{32}", by_path[("POST", "/v1/images/generations")] or "")
    assert by_path[("POST", "/v1/jobs")] == by_path[("GET", f"/v1/jobs/{job_id}/events")] == job_id
    assert len([line for line in requests if line[1] == "/v1/images/generations"]) == 1  # one line, not two
    output = server.output()
    for secret in (KEY, WRONG_KEY, PROMPT, "blurry"):
        assert secret not in output


def test_the_prompt_is_logged_at_debug_level_with_its_job(server_process):
    server = server_process("--provider", "slow", "--slow-step-s", "0.01", "--api-key", KEY, "--log-level", "debug")
    job_id = exercise(server)
    output = wait_for(lambda: "GET /v1/models 401" in (text := server.output()) and text, "the last line")
    assert re.search(rf"job {job_id}: text_to_image prompt='{PROMPT}'", output)
    assert KEY not in output and WRONG_KEY not in output
