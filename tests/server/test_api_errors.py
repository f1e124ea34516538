"""Keys and errors over a real socket: every ``/v1`` route needs a key, owners see only their own
jobs and files, and every failure is OpenAI's error object with the status a client acts on."""

from __future__ import annotations

import base64
import logging
import threading

import httpx
import pytest

from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.fake_backend import RecordingBackend
from fixtures.images import make_png
from fixtures.server_api import assert_error, wait_for, wait_for_status

pytestmark = pytest.mark.timeout(60)

KEYS = ("k1-secret-abc", "k2-secret-def")
#: The routes the issue names; the test also covers any other /v1 route the app has.
V1_ROUTES = {
    ("POST", "/v1/images/generations"),
    ("POST", "/v1/images/edits"),
    ("POST", "/v1/videos"),
    ("GET", "/v1/videos/{video_id}"),
    ("GET", "/v1/videos/{video_id}/content"),
    ("GET", "/v1/models"),
    ("GET", "/v1/capabilities"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{job_id}"),
    ("GET", "/v1/jobs/{job_id}/events"),
    ("POST", "/v1/jobs/{job_id}/cancel"),
    ("GET", "/v1/files/{file_id}"),
}


def v1_routes(app) -> set[tuple[str, str]]:
    """The ``/v1`` operations the app publishes in its OpenAPI document."""
    paths = app.openapi()["paths"]
    return {
        (method.upper(), path) for path, operations in paths.items() if path.startswith("/v1/") for method in operations
    }


def test_every_v1_route_needs_a_key(live_server, api_client, slow_backend):
    server = live_server(slow_backend, api_keys=KEYS)
    routes = v1_routes(server.app)
    assert V1_ROUTES <= routes
    anonymous, wrong = api_client(server), api_client(server, "not-a-key")
    for method, path in sorted(routes):
        url = path.replace("{", "").replace("}", "")
        for client, headers in ((anonymous, {}), (wrong, {}), (anonymous, {"Authorization": "Basic azE6"})):
            reply = client.request(method, url, json={"prompt": "x"}, headers=headers)
            error = assert_error(reply, 401, code="invalid_api_key")
            assert reply.headers["www-authenticate"] == "Bearer", (method, path)
            assert error["type"] == "invalid_request_error"
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert anonymous.get(path).status_code == 200
    assert api_client(server, KEYS[1]).get("/v1/models").status_code == 200


def test_an_unauthenticated_body_is_refused_before_it_is_read(live_server, api_client, slow_backend):
    server = live_server(slow_backend, api_keys=KEYS, max_body_mb=1)
    client = api_client(server)
    big = {"image": ("a.png", b"\0" * (4 * 1024 * 1024), "image/png")}  # over the limit too: 401 wins
    assert_error(client.post("/v1/images/edits", data={"prompt": "x"}, files=big), 401)
    assert_error(client.post("/v1/images/generations", content=b"{not json"), 401)


def test_jobs_and_files_of_one_key_are_not_found_for_another(live_server, api_client, slow_backend):
    server = live_server(slow_backend, api_keys=KEYS)
    one, two = api_client(server, KEYS[0]), api_client(server, KEYS[1])
    url = one.post("/v1/images/generations", json={"prompt": "a", "response_format": "url"}).json()["data"][0]["url"]
    job = one.post("/v1/jobs", json={"task": "text_to_image", "prompt": "b"}).json()
    done = wait_for_status(one, job["id"], "completed")
    file_id = done["result"][0]["file_id"]
    assert one.get(url).status_code == 200 and one.get(f"/v1/files/{file_id}").status_code == 200
    for method, path in (
        ("GET", url.removeprefix(server.url)),
        ("GET", f"/v1/files/{file_id}"),
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}/events"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("GET", f"/v1/videos/{job['id']}"),
    ):
        assert_error(two.request(method, path), 404, code="not_found")
    assert two.get("/v1/jobs").json()["data"] == []
    assert one.get(f"/v1/jobs/{job['id']}").json()["status"] == "completed"  # untouched by the other's cancel


def test_a_running_job_is_cancelled_only_by_its_owner(live_server, api_client):
    backend = SlowBackend(SlowConfig(step_s=0.05, steps=100))
    server = live_server(backend, api_keys=KEYS)
    one, two = api_client(server, KEYS[0]), api_client(server, KEYS[1])
    job = one.post("/v1/jobs", json={"task": "text_to_image", "prompt": "b"}).json()
    wait_for_status(one, job["id"], "running")
    assert_error(two.post(f"/v1/jobs/{job['id']}/cancel"), 404)
    assert one.get(f"/v1/jobs/{job['id']}").json()["status"] == "running" and backend.stopped_at == []
    assert one.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"


def test_keys_never_show_in_logs_or_answers(live_server, api_client, slow_backend, caplog):
    caplog.set_level(logging.DEBUG)
    server = live_server(slow_backend, api_keys=KEYS)
    client = api_client(server, KEYS[0])
    answers = [
        client.post("/v1/images/generations", json={"prompt": "a"}).text,
        client.get("/v1/jobs").text,
        api_client(server, KEYS[1] + "x").get("/v1/models").text,
        client.get("/v1/capabilities").text,
        repr(server.service),
    ]
    for key in KEYS:
        assert not any(key in text for text in answers)
        assert key not in caplog.text


@pytest.mark.parametrize(
    "body, param",
    [
        ({"prompt": ""}, "prompt"),
        ({}, "prompt"),
        ({"prompt": "x", "n": 0}, "n"),
        ({"prompt": "x", "n": 9}, "n"),  # over max_n
        ({"prompt": "x", "size": "big"}, "size"),
        ({"prompt": "x", "size": "0x64"}, "size"),
        ({"prompt": "x", "steps": 0}, "steps"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "guidance_scale": "lots"}, "guidance_scale"),
        ({"prompt": "x", "response_format": "gif"}, "response_format"),
        ({"prompt": "x", "output_format": "bmp"}, "output_format"),
        ({"prompt": "x", "partial_images": 9}, "partial_images"),
    ],
)
def test_invalid_requests_are_400_naming_the_field(live_server, api_client, recording_backend, body, param):
    server = live_server(recording_backend)
    assert_error(api_client(server).post("/v1/images/generations", json=body), 400, param=param)
    assert recording_backend.calls == []


def test_other_400s(live_server, api_client, slow_backend):
    client = api_client(live_server(slow_backend))
    not_json = client.post("/v1/images/generations", content=b"{nope", headers={"content-type": "application/json"})
    error = assert_error(not_json, 400)
    assert error["message"].startswith("body: not valid JSON")
    assert_error(client.post("/v1/images/generations", json=["a list"]), 400)
    mismatched = client.post(
        "/v1/images/edits",
        data={"prompt": "x"},
        files={"image": ("a.png", make_png(32, 32)), "mask": ("m.png", make_png(16, 16, mode="L"))},
    )
    assert_error(mismatched, 400, param="mask")
    error = assert_error(client.post("/v1/jobs", json={"task": "text_to_video", "prompt": "x"}), 400)
    assert "text_to_video" in error["message"] and error["code"] == "unsupported"
    assert_error(client.post("/v1/jobs", json={"task": "paint", "prompt": "x"}), 400, param="task")


def test_not_found_and_method_not_allowed(live_server, api_client, slow_backend):
    client = api_client(live_server(slow_backend, model_id="slow-1"))
    error = assert_error(client.post("/v1/images/generations", json={"prompt": "x", "model": "dall-e-3"}), 404)
    assert (error["param"], error["code"]) == ("model", "model_not_found") and "slow-1" in error["message"]
    assert_error(client.get("/v1/nowhere"), 404, code="not_found")
    assert_error(client.get("/v1/jobs/nope/events"), 404, param="job_id")
    assert_error(client.post("/v1/jobs/nope/cancel"), 404, param="job_id")
    assert_error(client.delete("/v1/models"), 405, code="method_not_allowed")


def test_bodies_over_the_limit_are_413(live_server, api_client, slow_backend):
    server = live_server(slow_backend, max_body_mb=0.01)  # 10 KiB
    client = api_client(server)
    prompt = "x" * 20_000
    error = assert_error(client.post("/v1/images/generations", json={"prompt": prompt}), 413, code="body_too_large")
    assert "limit" in error["message"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"prompt": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    chunked = client.post("/v1/images/generations", content=chunks(), headers={"content-type": "application/json"})
    assert_error(chunked, 413, code="body_too_large")
    upload = client.post("/v1/images/edits", data={"prompt": "x"}, files={"image": ("a.png", b"\0" * 20_000)})
    assert_error(upload, 413, code="body_too_large")
    assert client.get("/v1/models").status_code == 200 and slow_backend.runs == 0


def test_pixels_over_the_limit_are_413(live_server, api_client, slow_backend):
    server = live_server(slow_backend, max_pixels=64 * 64)
    client = api_client(server)
    assert_error(client.post("/v1/images/generations", json={"prompt": "x", "size": "128x128"}), 413, param="size")
    too_wide = client.post("/v1/images/generations", json={"prompt": "x", "width": 65, "height": 64})
    assert_error(too_wide, 413, code="too_many_pixels")
    big = make_png(128, 128)
    upload = client.post("/v1/images/edits", data={"prompt": "x"}, files={"image": ("a.png", big, "image/png")})
    assert_error(upload, 413, param="image", code="too_many_pixels")
    as_job = {"task": "image_to_image", "prompt": "x", "image": base64.b64encode(big).decode()}
    assert_error(client.post("/v1/jobs", json=as_job), 413, param="image")
    assert client.post("/v1/images/generations", json={"prompt": "x", "size": "64x64"}).status_code == 200
    assert slow_backend.runs == 1


def test_a_full_queue_is_429_with_retry_after(live_server, api_client):
    server = live_server(SlowBackend(SlowConfig(step_s=0.05, steps=200)), max_queue=1, concurrency=1)
    client = api_client(server)
    running = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a"}).json()
    wait_for_status(client, running["id"], "running")
    queued = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "b"}).json()
    for reply in (
        client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "c"}),
        client.post("/v1/images/generations", json={"prompt": "c"}),
        client.post("/v1/images/edits", data={"prompt": "c"}, files={"image": ("a.png", make_png(), "image/png")}),
    ):
        error = assert_error(reply, 429, code="queue_full")
        assert error["type"] == "rate_limit_error" and int(reply.headers["retry-after"]) >= 1
    assert {job["id"] for job in client.get("/v1/jobs").json()["data"]} == {running["id"], queued["id"]}
    for job in (queued, running):
        client.post(f"/v1/jobs/{job['id']}/cancel")


def test_an_engine_failure_is_500_and_the_server_keeps_serving(live_server, api_client):
    server = live_server(SlowBackend(SlowConfig(step_s=0.001, fail="engine")))
    client = api_client(server)
    for _ in range(2):
        error = assert_error(client.post("/v1/images/generations", json={"prompt": "x"}), 500, code="engine_error")
        assert error["type"] == "server_error" and "fail=engine" in error["message"]
    assert client.get("/healthz").status_code == 200 and client.get("/v1/models").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_an_unexpected_bug_is_500_without_its_insides(live_server, api_client):
    client = api_client(live_server(SlowBackend(SlowConfig(step_s=0.001, fail="bug"))))
    error = assert_error(client.post("/v1/images/generations", json={"prompt": "x"}), 500, code="internal_error")
    assert "RuntimeError" not in error["message"] and "fail=bug" not in error["message"]
    assert client.get("/v1/models").status_code == 200


def test_an_upstream_failure_is_502(live_server, api_client):
    client = api_client(live_server(RecordingBackend(fail_on_seeds={13})))
    error = assert_error(client.post("/v1/images/generations", json={"prompt": "x", "seed": 13}), 502)
    assert (error["type"], error["code"]) == ("server_error", "upstream_error") and "seed 13" in error["message"]
    assert client.post("/v1/images/generations", json={"prompt": "x", "seed": 14}).status_code == 200


def test_a_sync_request_whose_job_is_cancelled_is_503(live_server, api_client):
    backend = SlowBackend(SlowConfig(step_s=0.05, steps=200))
    client = api_client(live_server(backend))
    replies: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: replies.append(client.post("/v1/images/generations", json={"prompt": "x"})), daemon=True
    )
    worker.start()
    job = wait_for(lambda: client.get("/v1/jobs").json()["data"])[0]
    wait_for_status(client, job["id"], "running")
    client.post(f"/v1/jobs/{job['id']}/cancel")
    worker.join(timeout=10)
    assert_error(replies[0], 503, code="cancelled")
    assert backend.stopped_at
