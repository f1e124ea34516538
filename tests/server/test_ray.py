"""``serve --ray`` on a local Ray cluster (127.0.0.1) with the slow test backend: the plain server's
HTTP API through the Ray ingress (the official ``openai`` SDK as the client), models loaded on
demand per replica (sticky, least recently used evicted, allow-listed), cancel and client
disconnects that stop the engine on its replica, scaling out, and a replica killed under load.

The tests share one cluster (see ``tests/fixtures/ray_serve.py``) and a few deployments; each
deployment's tests sit together, so the cluster redeploys only between groups. A test that needs
an idle replica (``state()`` queues behind a running job) leaves its jobs finished.
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import signal
import time

import httpx
import openai
import pytest

from abstractvision.media import sniff_mime_type
from fixtures.server_api import assert_error, sse_events, stream_events, wait_for, wait_for_status
from server.fault_tools import new_job, raw_post, wait_step

pytestmark = pytest.mark.timeout(120)

KEYS = ("ray-key-one", "ray-key-two")
MODELS = ("slow-a", "slow-b", "slow-c")


def sdk(app, key: str = KEYS[0]) -> openai.OpenAI:
    return openai.OpenAI(base_url=app.base_url, api_key=key, max_retries=0, timeout=60)


def client(app, key: str | None = KEYS[0]) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=app.url, headers=headers, timeout=60)


def submit(http: httpx.Client, **body) -> dict:
    reply = http.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a cat", **body})
    assert reply.status_code == 202, reply.text
    return reply.json()


# ---- one replica, three allow-listed models, keys: the plain server's API --------------------------------
@pytest.fixture
def api_app(ray_serve):
    return ray_serve.deploy(
        models=MODELS,
        settings={"step_s": 0.02, "steps": 4, "previews": True},
        server={"api_keys": KEYS, "max_n": 4},
        replicas=1,
        max_models_per_replica=2,
    )


def test_the_openai_sdk_lists_the_models_and_generates_on_the_one_it_names(api_app):
    with sdk(api_app) as api:
        models = api.models.list().data
        assert [model.id for model in models] == list(MODELS)
        assert {model.owned_by for model in models} == {"abstractvision:slow"}
        assert all(model.tasks == ["text_to_image", "image_to_image"] for model in models)  # type: ignore[attr-defined]
        result = api.images.generate(model="slow-b", prompt="a lighthouse", n=2, extra_body={"seed": 21})
    assert [item.seed for item in result.data] == [21, 22]  # type: ignore[attr-defined]
    assert {item.metadata["model"] for item in result.data} == {"slow-b"}  # type: ignore[attr-defined]
    assert all(sniff_mime_type(base64.b64decode(item.b64_json)) == "image/png" for item in result.data)


def test_the_openai_sdk_streams_partial_images(api_app):
    with sdk(api_app) as api:
        stream = api.images.generate(model="slow-a", prompt="a cat", stream=True, partial_images=2)
        events = list(stream)
    assert [event.type for event in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert all(sniff_mime_type(base64.b64decode(event.b64_json)) == "image/png" for event in events)


def test_the_page_and_the_schema_are_the_plain_servers(api_app, live_server, slow_backend):
    plain = live_server(slow_backend, api_keys=KEYS)
    with client(api_app, None) as ray_http, httpx.Client(base_url=plain.url, timeout=30) as plain_http:
        for path in ("/", "/openapi.json", "/playground.json", "/healthz", "/readyz"):
            ours, theirs = ray_http.get(path), plain_http.get(path)
            assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content), path
            assert ours.headers["content-type"] == theirs.headers["content-type"], path
        page = ray_http.get("/")
        assert page.headers["content-security-policy"] == plain_http.get("/").headers["content-security-policy"]
        script = ray_http.get("/static/app.js")
        assert script.status_code == 200 and script.content == plain_http.get("/static/app.js").content


def test_keys_are_required_and_jobs_and_files_belong_to_their_key(api_app):
    with client(api_app, None) as anonymous, client(api_app) as one, client(api_app, KEYS[1]) as two:
        for method, path in (("GET", "/v1/models"), ("POST", "/v1/images/generations"), ("GET", "/v1/jobs")):
            assert_error(anonymous.request(method, path, json={"prompt": "x"}), 401, code="invalid_api_key")
        job = submit(one, model="slow-a")
        done = wait_for_status(one, job["id"], "completed")
        file_id = done["result"][0]["file_id"]
        assert one.get(f"/v1/files/{file_id}").status_code == 200
        for method, path in (
            ("GET", f"/v1/files/{file_id}"),
            ("GET", f"/v1/jobs/{job['id']}"),
            ("GET", f"/v1/jobs/{job['id']}/events"),
            ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ):
            assert_error(two.request(method, path), 404, code="not_found")
        assert job["id"] not in {view["id"] for view in two.get("/v1/jobs").json()["data"]}


def test_invalid_requests_are_the_plain_servers_400s(api_app):
    with client(api_app) as http:
        assert_error(http.post("/v1/images/generations", json={"prompt": ""}), 400, param="prompt")
        assert_error(http.post("/v1/images/generations", json={"prompt": "x", "n": 5}), 400, param="n")
        assert_error(http.post("/v1/jobs", json={"task": "text_to_video", "prompt": "x"}), 400)


def test_an_unknown_model_is_404_and_never_loads(api_app):
    with sdk(api_app) as api, pytest.raises(openai.NotFoundError, match="nope"):
        api.images.generate(model="nope", prompt="a cat")
    with client(api_app) as http:
        error = assert_error(http.post("/v1/jobs", json={"task": "text_to_image", "prompt": "x", "model": "nope"}), 404)
        assert error["param"] == "model"
    (state,) = api_app.replica_states(1)
    assert "nope" not in state["models"] and (state["last_run"] or {}).get("model") != "nope"
    # the replica's own guard, for a caller that skips the ingress
    from ray.exceptions import RayTaskError

    stream = api_app.engine.options(stream=True, multiplexed_model_id="nope").run.remote("text_to_image", {}, 1)
    with pytest.raises(RayTaskError, match="allow-list"):
        next(iter(stream))
    assert "nope" not in api_app.replica_states(1)[0]["models"]


def test_a_replica_keeps_its_models_and_evicts_the_least_recently_used(api_app):
    with sdk(api_app) as api:
        for model in ("slow-a", "slow-b", "slow-a"):
            api.images.generate(model=model, prompt="a cat")
        assert api_app.replica_states(1)[0]["models"] == ["slow-b", "slow-a"]  # most recent last
        api.images.generate(model="slow-c", prompt="a cat")  # over max_models_per_replica=2
    (state,) = api_app.replica_states(1)
    assert state["models"] == ["slow-a", "slow-c"]  # slow-b, the least recently used, went


def test_a_jobs_events_stream_through_the_ingress(api_app):
    with client(api_app) as http:
        job = submit(http, model="slow-b", seed=8)
        events = stream_events(http, "GET", f"/v1/jobs/{job['id']}/events")
        types = [event["type"] for event in events]
        assert types[:3] == ["queued", "running", "started"] and types[-1] == "completed", types
        steps = [event["progress"] for event in events if event["type"] == "step"]
        assert steps == [{"step": i, "total": 4} for i in (1, 2, 3, 4)]
        preview = next(event for event in events if event["type"] == "preview")
        assert base64.b64decode(preview["b64_json"]).startswith(b"\x89PNG")
        (item,) = events[-1]["result"]
        assert item["seed"] == 8 and http.get(f"/v1/files/{item['file_id']}").status_code == 200


def test_cancel_stops_the_engine_on_its_replica(api_app):
    with client(api_app) as http:
        job = submit(http, model="slow-a", steps=200)  # 4 s in all
        with http.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
            lines = stream.iter_lines()
            at = wait_for(lambda: http.get(f"/v1/jobs/{job['id']}").json()["progress"]["step"])
            started = time.monotonic()
            reply = http.post(f"/v1/jobs/{job['id']}/cancel")
            assert reply.status_code == 200 and reply.json()["status"] == "cancelled"
            assert time.monotonic() - started < 2
            assert list(sse_events(lines))[-1]["type"] == "cancelled"
        last = wait_for(lambda: _ended_run(api_app))
        assert last["status"] == "cancelled" and last["total"] == 200
        assert last["step"] <= at + 10, (at, last)  # it stopped within a few steps of the cancel, not at 200
        assert time.monotonic() - started < 2  # ...well before the 4 s the run would take
        assert wait_for_status(http, submit(http, model="slow-a", steps=1)["id"], "completed")


def test_a_client_that_hangs_up_stops_the_engine_on_its_replica(api_app):
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    known = {view["id"] for view in client(api_app).get("/v1/jobs").json()["data"]}
    body = {"prompt": "abandoned while running", "model": "slow-a", "steps": 200}
    hanging = raw_post(api_app.url, "/v1/images/generations", body, headers)
    running = new_job(api_app.base_url, known, status="running", headers=headers)["id"]
    at = wait_step(api_app.base_url, running, step=2, headers=headers)["progress"]["step"]
    hung_up = time.monotonic()
    hanging.close()
    view = wait_for(
        lambda: (v := client(api_app).get(f"/v1/jobs/{running}").json())["status"] == "cancelled" and v, timeout_s=5
    )
    assert view["error"]["code"] == "cancelled" and time.monotonic() - hung_up < 3
    last = wait_for(lambda: _ended_run(api_app))
    assert last["status"] == "cancelled" and last["step"] <= at + 25 < 200, (at, last)


def _ended_run(app) -> dict | None:
    """The replica's last run once it ended: its engine thread returned, whatever Ray's request did."""
    run = app.replica_states(1)[0]["last_run"]
    return run if run["status"] != "running" else None


# ---- an engine that fails on purpose ----------------------------------------------------------------
def test_an_engine_failure_is_the_plain_servers_500_and_the_replica_keeps_serving(ray_serve):
    app = ray_serve.deploy(settings={"step_s": 0.01, "fail": "engine"}, replicas=1)
    with client(app, None) as http:
        reply = http.post("/v1/images/generations", json={"prompt": "a cat", "n": 2})
        error = assert_error(reply, 500, code="engine_error")
        assert "fail=engine" in error["message"] and "replica" not in error["message"]
        job = submit(http)
        events = stream_events(http, "GET", f"/v1/jobs/{job['id']}/events")
        assert events[-1]["type"] == "failed" and events[-1]["error"] == error
    (state,) = app.replica_states(1)
    assert state["broken"] is None and state["last_run"]["status"] == "failed"  # an engine error is not a bug


@pytest.mark.slow  # Ray checks health every 5 s and replaces a replica after 3 failures in a row
def test_lora_adapters_are_listed_by_an_engine_replica_and_held_to(ray_serve, lora_folder):
    from fixtures.loras import pixel

    app = ray_serve.deploy(settings={"step_s": 0.05, "steps": 2, "lora_dir": str(lora_folder)}, replicas=1)
    listed = app.engine.adapters.remote("slow-a").result(timeout_s=30)  # the replica's own answer
    assert [entry["id"] for entry in listed] == ["glow", "ink"]
    with client(app, None) as http:
        assert [entry["id"] for entry in http.get("/v1/adapters").json()["data"]] == ["glow", "ink"]
        assert http.get("/v1/capabilities").json()["features"]["lora"] is True
        long_job = submit(http, steps=60)  # 3 s on the only replica
        wait_for_status(http, long_job["id"], "running")
        started = time.monotonic()
        queued = submit(http, lora=["glow"], steps=1)  # the list is the ingress's: no wait for the replica
        assert time.monotonic() - started < 1.0
        wait_for_status(http, queued["id"], "completed", timeout_s=30)
        plain = http.post("/v1/images/generations", json={"prompt": "a", "seed": 3})
        made = http.post("/v1/images/generations", json={"prompt": "a", "seed": 3, "lora": ["ink:0.5"]})
        assert made.status_code == 200, made.text
        (item,) = made.json()["data"]
        assert item["metadata"]["lora_adapters"] == [{"source": "ink", "scale": 0.5}]
        colours = [pixel(base64.b64decode(reply.json()["data"][0]["b64_json"])) for reply in (plain, made)]
        assert colours[0] != colours[1]
        jobs = len(http.get("/v1/jobs").json()["data"])
        refused = http.post(
            "/v1/images/generations", json={"prompt": "a", "lora": [str(lora_folder / "ink.safetensors")]}
        )
        assert_error(refused, 404, param="lora", code="adapter_not_found")
        assert len(http.get("/v1/jobs").json()["data"]) == jobs  # refused before a job existed


def test_a_broken_engine_fails_its_health_check_and_ray_replaces_the_replica(ray_serve):
    app = ray_serve.deploy(settings={"step_s": 0.01, "fail": "bug"}, replicas=1)
    (before,) = app.replica_states(1)
    with client(app, None) as http:
        assert_error(http.post("/v1/images/generations", json={"prompt": "a cat"}), 500, code="internal_error")
        (broken,) = app.replica_states(1)
        assert broken["pid"] == before["pid"] and "fail=bug" in broken["broken"]
        after = wait_for(lambda: _replaced(app, before["pid"]), timeout_s=60, interval_s=0.5)
        assert after["broken"] is None and after["last_run"] is None  # a fresh replica
        assert http.get("/readyz").status_code == 200  # the ingress served throughout, no restart


def _replaced(app, pid: int) -> dict | None:
    state = app.replica_states(1)[0]
    return state if state["pid"] != pid else None


# ---- scaling out ------------------------------------------------------------------------------------
SCALE = {"models": MODELS, "settings": {"step_s": 0.1, "steps": 5}, "max_models_per_replica": 1}


def _images_per_second(app, requests: int = 12, clients: int = 6) -> float:
    def one(_: int) -> None:
        reply = httpx.post(f"{app.base_url}/images/generations", json={"prompt": "x", "model": "slow-a"}, timeout=60)
        assert reply.status_code == 200, reply.text

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))  # every replica holds the model
        started = time.perf_counter()
        list(pool.map(one, range(requests)))
    return requests / (time.perf_counter() - started)


def test_two_replicas_serve_at_least_1_7_times_the_images_of_one(ray_serve):
    one = _images_per_second(ray_serve.deploy(**SCALE, replicas=1))
    two = _images_per_second(ray_serve.deploy(**SCALE, replicas=2))
    assert two >= 1.7 * one, (one, two)  # 0.5 s an image: 2 images/s per replica at best


def test_two_models_land_on_different_replicas_and_a_third_evicts_one(ray_serve):
    app = ray_serve.deploy(**SCALE, replicas=2)
    with sdk(app, "unused") as api:
        for model in ("slow-a", "slow-b") * 3:
            assert api.images.generate(model=model, prompt="x").data[0].metadata["model"] == model  # type: ignore
        assert sorted(tuple(s["models"]) for s in app.replica_states(2)) == [("slow-a",), ("slow-b",)]
        api.images.generate(model="slow-c", prompt="x")
    held = sorted(tuple(s["models"]) for s in app.replica_states(2))
    assert held in ([("slow-a",), ("slow-c",)], [("slow-b",), ("slow-c",)]), held


def test_a_replica_killed_under_load_fails_only_its_job_and_is_replaced(ray_serve):
    app = ray_serve.deploy(**SCALE, replicas=2)
    pids = {state["pid"] for state in app.replica_states(2)}
    body = {"prompt": "x", "model": "slow-a", "steps": 20, "response_format": "url"}  # 2 s each

    def one(_: int) -> httpx.Response:
        return httpx.post(f"{app.base_url}/images/generations", json=body, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        replies = pool.map(one, range(6))
        time.sleep(1.0)  # both replicas are mid-job, four jobs wait at the ingress
        os.kill(min(pids), signal.SIGKILL)
        replies = list(replies)
    failed = [reply for reply in replies if reply.status_code != 200]
    assert len(failed) == 1, [(r.status_code, r.text[:200]) for r in replies]
    error = assert_error(failed[0], 500, code="engine_error")
    assert "replica running this job died" in error["message"] and "submit the job again" in error["message"]
    for reply in replies:  # every completed result is kept
        if reply.status_code == 200:
            assert httpx.get(reply.json()["data"][0]["url"], timeout=10).status_code == 200
    # Ray replaces the replica; the service keeps answering meanwhile, no restart
    wait_for(lambda: _running_replicas() == 2, timeout_s=60, interval_s=0.5)
    now = {state["pid"] for state in app.replica_states(2)}
    assert max(pids) in now and min(pids) not in now
    with sdk(app, "unused") as api:
        for _ in range(4):
            assert api.images.generate(model="slow-a", prompt="x", extra_body={"steps": 1}).data


def _running_replicas() -> int:
    from ray import serve

    status = serve.status().applications["abstractvision"].deployments["abstractvision-engine"]
    return status.replica_states.get("RUNNING", 0)
