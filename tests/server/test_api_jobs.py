"""The job API over a real socket: submit (202), poll, list per owner, follow the events, cancel a
queued job (it never runs) and a running one (the engine stops)."""

from __future__ import annotations

import base64
import time

import pytest

from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.images import make_png
from fixtures.server_api import assert_error, sse_events, stream_events, wait_for, wait_for_status

pytestmark = pytest.mark.timeout(60)


def slow(**options) -> SlowBackend:
    return SlowBackend(SlowConfig(**options))


def submit(client, **body) -> dict:
    reply = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a cat", **body})
    assert reply.status_code == 202, reply.text
    return reply.json()


def test_submit_answers_202_then_the_job_completes_with_its_result(live_server, api_client):
    server = live_server(slow(step_s=0.01, steps=3))
    client = api_client(server)
    reply = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a cat", "seed": 4, "n": 2})
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert job["status"] in ("queued", "running") and job["object"] == "job" and job["task"] == "text_to_image"
    assert job["poll_url"] == f"/v1/jobs/{job['id']}" and reply.headers["location"] == job["poll_url"]
    assert job.get("queue_position") in (1, None)  # None once a worker took it
    done = wait_for_status(client, job["id"], "completed")
    assert done["progress"] == {"step": 3, "total": 3}
    assert [item["seed"] for item in done["result"]] == [4, 5]
    for item in done["result"]:
        file = client.get(f"/v1/files/{item['file_id']}")
        assert file.status_code == 200 and file.headers["content-type"] == item["content_type"] == "image/png"
    assert_error(client.get("/v1/jobs/nope"), 404, param="job_id", code="not_found")


def test_a_queued_job_shows_its_queue_position(live_server, api_client):
    server = live_server(slow(step_s=0.05, steps=100), concurrency=1)
    client = api_client(server)
    first = submit(client)
    wait_for_status(client, first["id"], "running")
    second, third = submit(client), submit(client)
    assert (second["status"], second["queue_position"]) == ("queued", 1)
    assert (third["status"], third["queue_position"]) == ("queued", 2)
    assert client.get(f"/v1/jobs/{third['id']}").json()["queue_position"] == 2
    for job in (third, second, first):
        assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"


def test_progress_is_reported_while_running(live_server, api_client):
    server = live_server(slow(step_s=0.05, steps=40))
    client = api_client(server)
    job = submit(client)
    view = wait_for(lambda: (v := client.get(f"/v1/jobs/{job['id']}").json())["progress"]["step"] and v)
    assert view["status"] == "running" and view["progress"]["total"] == 40 and 1 <= view["progress"]["step"] < 40
    client.post(f"/v1/jobs/{job['id']}/cancel")


def test_jobs_with_input_images_as_base64(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    client = api_client(server)
    image, reference, mask = make_png(20, 20, (1, 1, 1)), make_png(20, 20, (2, 2, 2)), make_png(20, 20, mode="L")
    b64 = [base64.b64encode(data).decode() for data in (image, reference, mask)]
    job = submit(
        client, task="image_to_image", image=f"data:image/png;base64,{b64[0]}", images=[b64[1]], mask=b64[2], seed=1
    )
    assert wait_for_status(client, job["id"], "completed", "failed")["status"] == "completed"
    task, request = recording_backend.calls[-1]
    assert task == "image_to_image" and request.image == image and request.mask == mask and request.seed == 1
    assert request.extra["reference_images"] == [reference]
    assert_error(
        client.post("/v1/jobs", json={"task": "image_to_image", "prompt": "x", "image": "%%"}), 400, param="image"
    )


def test_list_shows_only_the_callers_jobs(live_server, api_client):
    server = live_server(slow(step_s=0.001, steps=1), api_keys=("k1", "k2"))
    one, two = api_client(server, "k1"), api_client(server, "k2")
    mine = {submit(one)["id"], submit(one)["id"]}
    theirs = submit(two)["id"]
    listed = one.get("/v1/jobs").json()
    assert listed["object"] == "list" and {job["id"] for job in listed["data"]} == mine
    assert [job["id"] for job in two.get("/v1/jobs").json()["data"]] == [theirs]


def test_events_stream_queued_running_steps_previews_completed(live_server, api_client):
    server = live_server(slow(step_s=0.01, steps=3, previews=True))
    client = api_client(server)
    job = submit(client, seed=8)
    events = stream_events(client, "GET", f"/v1/jobs/{job['id']}/events")
    types = [event["type"] for event in events]
    assert types[:3] == ["queued", "running", "started"] and types[-1] == "completed", types
    assert types.count("step") == 3 and "preview" in types
    steps = [event["progress"] for event in events if event["type"] == "step"]
    assert steps == [{"step": i, "total": 3} for i in (1, 2, 3)]
    preview = next(event for event in events if event["type"] == "preview")
    assert base64.b64decode(preview["b64_json"]).startswith(b"\x89PNG")
    assert all(event["job_id"] == job["id"] for event in events)
    assert events[-1]["result"][0]["seed"] == 8
    # a finished job's stream is its final state
    (final,) = stream_events(client, "GET", f"/v1/jobs/{job['id']}/events")
    assert final["type"] == "completed" and final["result"] == events[-1]["result"]


def test_events_of_a_failed_job(live_server, api_client):
    server = live_server(slow(step_s=0.01, fail="engine"))
    client = api_client(server)
    job = submit(client)
    events = stream_events(client, "GET", f"/v1/jobs/{job['id']}/events")
    assert events[-1]["type"] == "failed" and events[-1]["error"]["code"] == "engine_error"
    assert "fail=engine" in events[-1]["error"]["message"]
    assert client.get(f"/v1/jobs/{job['id']}").json()["error"]["type"] == "server_error"


def test_cancel_a_queued_job_it_never_runs(live_server, api_client):
    backend = slow(step_s=0.02, steps=10)
    server = live_server(backend, concurrency=1)
    client = api_client(server)
    first = submit(client)
    wait_for_status(client, first["id"], "running")
    queued = submit(client)
    cancelled = client.post(f"/v1/jobs/{queued['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"]["code"] == "cancelled"
    events = stream_events(client, "GET", f"/v1/jobs/{queued['id']}/events")
    assert [event["type"] for event in events] == ["cancelled"]
    assert wait_for_status(client, first["id"], "completed")["status"] == "completed"
    time.sleep(0.1)
    assert backend.runs == 1  # the cancelled job never reached the engine
    again = client.post(f"/v1/jobs/{queued['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"  # idempotent


def test_cancel_a_running_job_stops_the_engine(live_server, api_client):
    backend = slow(step_s=0.05, steps=200)
    server = live_server(backend)
    client = api_client(server)
    job = submit(client)
    with client.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
        lines = stream.iter_lines()
        wait_for(lambda: client.get(f"/v1/jobs/{job['id']}").json()["progress"]["step"])
        started = time.monotonic()
        reply = client.post(f"/v1/jobs/{job['id']}/cancel")
        assert reply.status_code == 200 and reply.json()["status"] == "cancelled"
        assert time.monotonic() - started < 2
        events = list(sse_events(lines))
    assert events[-1]["type"] == "cancelled"
    assert len(backend.stopped_at) == 1 and backend.stopped_at[0] < 200
    assert backend.active == 0
    # the worker is free again: the next job runs
    assert wait_for_status(client, submit(client, steps=1)["id"], "completed")
