"""``POST /v1/images/upscale`` and the ``image_upscale`` job over a real socket, on the sd.cpp backend
with the fake sd-cli (a real process: ``-M upscale``, x4 per pass) and on the tiny Diffusers upscaler."""

from __future__ import annotations

import base64

import pytest

from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend
from abstractvision.media import inspect_image
from fixtures.images import make_png
from fixtures.server_api import assert_error, stream_events, wait_for_status

pytestmark = pytest.mark.timeout(60)


def png_size(data: bytes) -> tuple[int, int]:
    info = inspect_image(data)
    return info.width, info.height


@pytest.fixture
def upscaler_backend(fake_sd_cli, tmp_path):
    weights = tmp_path / "RealESRGAN_x4plus.pth"
    weights.write_bytes(b"stand-in weights")
    return StableDiffusionCppVisionBackend(upscale_model=str(weights), sd_cli_path=str(fake_sd_cli.path), mode="cli")


def upload(width: int = 16, height: int = 12) -> dict:
    return {"image": ("photo.png", make_png(width, height), "image/png")}


def test_upscale_answers_like_the_images_api(live_server, api_client, upscaler_backend):
    client = api_client(live_server(upscaler_backend, model_id="esrgan"))
    reply = client.post("/v1/images/upscale", files=upload(), data={"scale": "2", "model": "esrgan"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert isinstance(body["created"], int) and body["output_format"] == "png"
    (item,) = body["data"]
    assert png_size(base64.b64decode(item["b64_json"])) == (32, 24)
    assert item["metadata"]["task"] == "image_upscale" and item["metadata"]["engine_scale"] == 4


def test_size_is_the_exact_resolution_and_url_answers_work(live_server, api_client, upscaler_backend):
    client = api_client(live_server(upscaler_backend))
    reply = client.post("/v1/images/upscale", files=upload(), data={"size": "50x40", "response_format": "url"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["size"] == "50x40"
    assert png_size(client.get(body["data"][0]["url"]).content) == (50, 40)


def test_the_capabilities_list_upscaling_only_where_an_upscaler_is_configured(
    live_server, api_client, upscaler_backend, recording_backend
):
    assert "image_upscale" in api_client(live_server(upscaler_backend)).get("/v1/capabilities").json()["tasks"]
    client = api_client(live_server(recording_backend))
    assert "image_upscale" not in client.get("/v1/capabilities").json()["tasks"]
    error = assert_error(client.post("/v1/images/upscale", files=upload(), data={"scale": "2"}), 400)
    assert error["code"] == "unsupported" and "image_upscale" in error["message"]


@pytest.mark.parametrize(
    ("files", "data", "status", "param"),
    [
        ({}, {"scale": "2"}, 400, "image"),
        ({"image": ("x.png", b"not an image", "image/png")}, {}, 400, "image"),
        (upload(), {"n": "2"}, 400, "n"),
        (upload(), {"scale": "40"}, 400, "scale"),
        (upload(), {"scale": "2", "size": "64x48"}, 400, "resolution"),
        (upload(), {"size": "8x8"}, 400, "resolution"),
        (upload(), {"scale": "16"}, 413, "scale"),
        (upload(), {"size": "400x400"}, 413, "size"),
    ],
    ids=["no-image", "not-an-image", "n", "scale-range", "scale-and-size", "smaller", "scale-pixels", "size-pixels"],
)
def test_bad_upscale_requests_name_the_field(live_server, api_client, upscaler_backend, files, data, status, param):
    client = api_client(live_server(upscaler_backend, max_pixels=10_000))
    assert_error(client.post("/v1/images/upscale", files=files, data=data), status, param=param)


def test_an_upscale_job_reports_each_pass(live_server, api_client, fake_sd_cli, tmp_path):
    weights = tmp_path / "x2.pth"
    weights.write_bytes(b"stand-in weights")
    fake_sd_cli.monkeypatch.setenv("FAKE_SD_CLI_UPSCALE_FACTOR", "2")
    backend = StableDiffusionCppVisionBackend(
        upscale_model=str(weights), upscale_repeats=2, sd_cli_path=str(fake_sd_cli.path), mode="cli"
    )
    client = api_client(live_server(backend))
    image = base64.b64encode(make_png(10, 10)).decode()
    reply = client.post("/v1/jobs", json={"task": "image_upscale", "image": image, "scale": 3})
    assert reply.status_code == 202, reply.text
    job = reply.json()
    events = stream_events(client, "GET", f"/v1/jobs/{job['id']}/events")
    assert [event["progress"] for event in events if event["type"] == "step"][-1] == {"step": 2, "total": 2}
    (result,) = events[-1]["result"]
    assert events[-1]["type"] == "completed" and result["metadata"]["resized_from"] == [40, 40]
    assert png_size(client.get(f"/v1/files/{result['file_id']}").content) == (30, 30)


def test_cancelling_an_upscale_job_stops_sd_cli(live_server, api_client, fake_sd_cli, upscaler_backend):
    fake_sd_cli.behave("hang")
    client = api_client(live_server(upscaler_backend))
    image = base64.b64encode(make_png()).decode()
    job = client.post("/v1/jobs", json={"task": "image_upscale", "image": image}).json()
    wait_for_status(client, job["id"], "running")
    assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_tiny_diffusers_upscaler_through_the_server(live_server, api_client, tiny_upscaler_backend):
    client = api_client(live_server(tiny_upscaler_backend))
    data = {"scale": "2", "prompt": "a beach", "steps": "2", "seed": "9"}
    reply = client.post("/v1/images/upscale", files=upload(16, 16), data=data)
    assert reply.status_code == 200, reply.text
    (item,) = reply.json()["data"]
    assert png_size(base64.b64decode(item["b64_json"])) == (32, 32)
    assert item["seed"] == 9 and item["metadata"]["prompt"] == "a beach" and item["metadata"]["steps"] == 2
