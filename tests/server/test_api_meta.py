"""What the server says about itself over a real socket (models, capabilities, health, readiness),
and OpenAI's Videos API with this project's OpenAI backend as the engine (pointed at the loopback
OpenAI fake, which plays a video service)."""

from __future__ import annotations

import pytest

from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.images import make_png
from fixtures.server_api import assert_error, wait_for, wait_for_status

pytestmark = pytest.mark.timeout(60)


def test_models_is_openais_list_with_tasks(live_server, api_client, slow_backend):
    server = live_server(slow_backend, model_id="slow-xl")
    body = api_client(server).get("/v1/models").json()
    assert body["object"] == "list"
    (entry,) = body["data"]
    assert entry["id"] == "slow-xl" and entry["object"] == "model" and isinstance(entry["created"], int)
    assert entry["owned_by"] == "abstractvision:slow"
    assert entry["tasks"] == ["text_to_image", "image_to_image"]


def test_capabilities_describe_tasks_limits_and_features(live_server, api_client, slow_backend):
    server = live_server(slow_backend, max_n=4, max_pixels=1024 * 1024, max_queue=7, max_body_mb=2)
    caps = api_client(server).get("/v1/capabilities").json()
    assert caps["backend"] == "slow" and caps["model"] == "slow" and caps["auth_required"] is False
    assert caps["tasks"] == ["text_to_image", "image_to_image"]
    limits = caps["limits"]
    assert limits["sizes"] == ["256x256", "512x512", "768x768", "1024x1024"]  # within max_pixels
    assert (limits["max_n"], limits["max_pixels"], limits["max_queue"]) == (4, 1024 * 1024, 7)
    assert (limits["max_width"], limits["max_height"], limits["max_body_bytes"]) == (2048, 2048, 2 * 1024 * 1024)
    assert caps["features"] == {
        "cancel_queued": True,
        "cancel_running": True,
        "stream": True,
        "jobs": True,
        "mask": True,
        "previews": False,
        "lora": False,  # the slow backend takes adapters only with a lora_dir
    }


def test_healthz_and_readyz(live_server, api_client, slow_backend):
    server = live_server(slow_backend)
    client = api_client(server)
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readyz_is_503_while_the_queue_is_full(live_server, api_client):
    server = live_server(SlowBackend(SlowConfig(step_s=0.05, steps=200)), max_queue=1, concurrency=1)
    client = api_client(server)
    running = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a"}).json()
    wait_for_status(client, running["id"], "running")
    queued = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "b"}).json()
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503 and "queue is full" in not_ready.json()["detail"]
    assert client.get("/healthz").status_code == 200  # alive all the same
    client.post(f"/v1/jobs/{queued['id']}/cancel")
    assert client.get("/readyz").status_code == 200
    client.post(f"/v1/jobs/{running['id']}/cancel")


@pytest.fixture
def video_server(live_server, openai_server):
    """Our server over the OpenAI backend whose upstream is the loopback fake's video job API."""
    openai_server.video_polls = 2
    config = OpenAICompatibleBackendConfig(
        base_url=openai_server.base_url,
        model_id="sora-2",
        text_to_video_path="/videos",
        image_to_video_path="/videos",
        poll_interval_s=0.01,
    )
    return live_server(OpenAICompatibleVisionBackend(config=config), model_id="sora-2")


def test_videos_create_poll_and_download(video_server, api_client, openai_server):
    client = api_client(video_server)
    created = client.post("/v1/videos", json={"model": "sora-2", "prompt": "waves", "seconds": "4", "size": "720x1280"})
    assert created.status_code == 200, created.text
    video = created.json()
    assert video["object"] == "video" and video["status"] in ("queued", "in_progress", "completed")
    assert (video["model"], video["size"]) == ("sora-2", "720x1280")
    done = wait_for(lambda: (v := client.get(f"/v1/videos/{video['id']}").json())["status"] == "completed" and v)
    assert done["progress"] == 100 and done["id"] == video["id"]
    assert (done["seconds"], done["size"]) == ("4", "720x1280")
    content = client.get(f"/v1/videos/{video['id']}/content")
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    assert content.content[4:8] == b"ftyp"
    upstream = openai_server.requests_to("/videos")[0]
    assert upstream.field("prompt") == "waves" and upstream.field("seconds") == "4"
    assert upstream.field("size") == "720x1280"


def test_image_to_video_with_an_input_reference(video_server, api_client, openai_server):
    client = api_client(video_server)
    created = client.post(
        "/v1/videos",
        data={"prompt": "make it move", "seconds": "8"},
        files={"input_reference": ("ref.png", make_png(16, 16), "image/png")},
    )
    assert created.status_code == 200, created.text
    video_id = created.json()["id"]
    wait_for(lambda: client.get(f"/v1/videos/{video_id}").json()["status"] == "completed")
    assert client.get(f"/v1/videos/{video_id}/content").status_code == 200
    upstream = openai_server.requests_to("/videos")[0]
    assert list(upstream.files) == ["input_reference"]
    assert upstream.field("seconds") == "8"


def test_video_errors(video_server, api_client, slow_backend, live_server):
    client = api_client(video_server)
    assert_error(client.get("/v1/videos/nope"), 404, param="video_id", code="not_found")
    assert_error(client.post("/v1/videos", json={"prompt": "waves", "seconds": "x"}), 400, param="seconds")
    no_video = api_client(live_server(slow_backend))
    error = assert_error(no_video.post("/v1/videos", json={"prompt": "waves"}), 400)
    assert "text_to_video" in error["message"]
    # an image job is not a video
    job = no_video.post("/v1/jobs", json={"task": "text_to_image", "prompt": "x"}).json()
    assert_error(no_video.get(f"/v1/videos/{job['id']}"), 404, param="video_id")
