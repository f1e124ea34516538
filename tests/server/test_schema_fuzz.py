"""Property-based API tests with schemathesis against the server's ``/openapi.json``, over a real
socket: no generated request gets a 5xx, and every answer conforms to the published schema
(documented status, content type and body). With and without keys.

The server runs over a :class:`SlowBackend` with no sleep and small limits, so the requests the
fuzzer makes (``n``, sizes, steps) stay quick; examples are derandomized for stable CI runs.

Why the schema is read when this module loads, from an app that is never started: schemathesis
makes one test per operation at collection time (its fixture-based loader does not work with this
pytest). Each test then checks that the live server publishes that very document before fuzzing it.
"""

from __future__ import annotations

import re
import tempfile

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from abstractvision.testing.slow import SlowBackend, SlowConfig

KEY = "fuzz-key-1"
MODEL = "slow-1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Small limits keep every generated request fast (the fuzzer likes n=max and huge sizes).
LIMITS = {"max_n": 2, "max_pixels": 64 * 64, "max_queue": 8, "max_body_mb": 1}
FUZZ = settings(
    max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def _backend() -> SlowBackend:
    return SlowBackend(SlowConfig(step_s=0.0, steps=2, previews=True))


def _published_document() -> dict:
    from abstractvision.server.app import create_app_for_backend
    from abstractvision.server.settings import ServerConfig

    with tempfile.TemporaryDirectory() as store:
        app = create_app_for_backend(ServerConfig(store=store, **LIMITS), _backend(), model_id=MODEL)
        try:
            return app.openapi()
        finally:
            app.state.service.records.close()


DOCUMENT = _published_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def _serve(live_server, **server_settings) -> str:
    server = live_server(_backend(), model_id=MODEL, **LIMITS, **server_settings)
    assert httpx.get(f"{server.url}/openapi.json").json() == DOCUMENT  # the document fuzzed is the one served
    return server.url


@pytest.fixture
def open_url(live_server) -> str:
    return _serve(live_server)


@pytest.fixture
def keyed_url(live_server) -> str:
    return _serve(live_server, api_keys=(KEY,))


@pytest.mark.timeout(120)
@schema.parametrize()
@FUZZ
def test_open_server_conforms_to_its_schema(case, open_url):
    case.call_and_validate(base_url=open_url, checks=CHECKS, timeout=30)


@pytest.mark.timeout(120)
@schema.parametrize()
@FUZZ
def test_keyed_server_conforms_to_its_schema(case, keyed_url):
    case.call_and_validate(base_url=keyed_url, checks=CHECKS, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)


# ---- the answers the fuzzer cannot reach (real ids, real images, failures), checked the same way --------
#: The checks on answers meant to be failures: all but "no 5xx".
CONFORMANCE = CHECKS[1:]


def conforms(reply: httpx.Response, method: str, path: str, checks: list = CHECKS) -> httpx.Response:
    """``reply`` passes ``checks`` for the operation ``method path`` (a template) of the published document."""
    pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path))
    match = re.fullmatch(pattern, reply.request.url.path)
    assert match, (path, reply.request.url.path)
    reply.request.read()  # a multipart body was streamed; the checks read it
    schema[path][method].Case(path_parameters=match.groupdict()).validate_response(reply, checks=checks)
    return reply


@pytest.mark.timeout(60)
def test_real_answers_conform_to_the_schema(live_server, api_client):
    from fixtures.images import make_png
    from fixtures.server_api import wait_for_status

    backend = SlowBackend(SlowConfig(step_s=0.02, steps=3, previews=True))
    server = live_server(backend, model_id=MODEL, **{**LIMITS, "max_queue": 1}, concurrency=1)
    client = api_client(server)
    generate = "/v1/images/generations"
    for fields in ({}, {"response_format": "url", "output_format": "jpeg"}, {"output_format": "webp", "n": 2}):
        reply = conforms(client.post(generate, json={"prompt": "a", "seed": 1, **fields}), "POST", generate)
        assert reply.status_code == 200
        for item in reply.json()["data"]:
            if item.get("url"):
                assert conforms(client.get(item["url"]), "GET", "/v1/files/{file_id}").status_code == 200
    streamed = client.post(generate, json={"prompt": "a", "stream": True, "partial_images": 1})
    assert conforms(streamed, "POST", generate).headers["content-type"].startswith("text/event-stream")
    edit = client.post("/v1/images/edits", data={"prompt": "a"}, files={"image": ("a.png", make_png(16, 16))})
    assert conforms(edit, "POST", "/v1/images/edits").status_code == 200

    job = conforms(client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a"}), "POST", "/v1/jobs").json()
    wait_for_status(client, job["id"], "running")
    queued = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "b"}).json()
    assert conforms(client.get(f"/v1/jobs/{queued['id']}"), "GET", "/v1/jobs/{job_id}").json()["queue_position"] == 1
    full = conforms(client.post(generate, json={"prompt": "c"}), "POST", generate)
    assert full.status_code == 429
    assert conforms(client.get("/readyz"), "GET", "/readyz", CONFORMANCE).status_code == 503
    cancelled = conforms(client.post(f"/v1/jobs/{queued['id']}/cancel"), "POST", "/v1/jobs/{job_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    wait_for_status(client, job["id"], "completed")
    for path in ("/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events"):
        assert conforms(client.get(path.replace("{job_id}", job["id"])), "GET", path).status_code == 200
    assert conforms(client.get("/v1/jobs"), "GET", "/v1/jobs").json()["data"]
    for path in ("/v1/models", "/v1/capabilities", "/healthz", "/readyz"):
        assert conforms(client.get(path), "GET", path).status_code == 200
    assert conforms(client.post("/v1/videos", json={"prompt": "waves"}), "POST", "/v1/videos").status_code == 400
    oversized = client.post(generate, json={"prompt": "x" * (2 * 1024 * 1024)})
    assert conforms(oversized, "POST", generate).status_code == 413


@pytest.mark.timeout(60)
def test_failures_conform_to_the_schema(live_server, api_client):
    from fixtures.server_api import wait_for_status

    server = live_server(SlowBackend(SlowConfig(step_s=0.0, fail="engine")), model_id=MODEL, api_keys=(KEY,))
    client = api_client(server, KEY)
    generate = "/v1/images/generations"
    failed = conforms(client.post(generate, json={"prompt": "a"}), "POST", generate, CONFORMANCE)
    assert failed.status_code == 500
    job = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a"}).json()
    wait_for_status(client, job["id"], "failed")
    assert conforms(client.get(f"/v1/jobs/{job['id']}"), "GET", "/v1/jobs/{job_id}").json()["error"]
    assert conforms(api_client(server).get("/v1/jobs"), "GET", "/v1/jobs").status_code == 401
    missing = client.get(f"/v1/files/{'0' * 64}")
    assert conforms(missing, "GET", "/v1/files/{file_id}").status_code == 404


@pytest.mark.timeout(60)
def test_lora_answers_conform_to_the_schema(live_server, api_client, lora_folder):
    from fixtures.images import make_png

    backend = SlowBackend(SlowConfig(step_s=0.0, steps=2, lora_dir=str(lora_folder)))
    client = api_client(live_server(backend, model_id=MODEL, **LIMITS))
    generate = "/v1/images/generations"
    listed = conforms(client.get("/v1/adapters"), "GET", "/v1/adapters").json()["data"]
    assert [entry["id"] for entry in listed] == ["glow", "ink"]
    made = client.post(generate, json={"prompt": "a", "lora": ["ink:0.5", {"source": "glow", "scale": 2}]})
    assert conforms(made, "POST", generate).status_code == 200
    refused = client.post(generate, json={"prompt": "a", "lora": ["/etc/passwd"]})
    assert conforms(refused, "POST", generate, CONFORMANCE).status_code == 404
    edit = client.post(
        "/v1/images/edits", data={"prompt": "a", "lora": ["ink"]}, files={"image": ("a.png", make_png(16, 16))}
    )
    assert conforms(edit, "POST", "/v1/images/edits").status_code == 200
