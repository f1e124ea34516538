"""OpenAI's Images API over a real socket: generations (b64_json, url, n, seeds, sizes, formats,
extension fields) and edits (``image``, ``image[]``, ``mask``), checked on the bytes a client gets
and on the requests the backend received."""

from __future__ import annotations

import base64

import pytest

from abstractvision.media import inspect_image, sniff_mime_type
from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.images import make_png
from fixtures.server_api import assert_error, stream_events

pytestmark = pytest.mark.timeout(60)


def png_size(data: bytes) -> tuple[int, int]:
    info = inspect_image(data)
    return info.width, info.height


def test_generation_answers_b64_json_with_seed_and_metadata(live_server, api_client, recording_backend):
    server = live_server(recording_backend, model_id="rec-1")
    reply = api_client(server).post("/v1/images/generations", json={"model": "rec-1", "prompt": "a cat", "seed": 11})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert isinstance(body["created"], int) and body["output_format"] == "png"
    (item,) = body["data"]
    assert sniff_mime_type(base64.b64decode(item["b64_json"])) == "image/png"
    assert item["seed"] == 11 and item["metadata"]["seed"] == 11 and item["metadata"]["task"] == "text_to_image"
    assert "url" not in item or item["url"] is None
    task, request = recording_backend.calls[-1]
    assert task == "text_to_image" and request.prompt == "a cat" and request.seed == 11


def test_url_answers_point_at_the_stored_file(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    client = api_client(server)
    reply = client.post("/v1/images/generations", json={"prompt": "a cat", "response_format": "url", "n": 2})
    assert reply.status_code == 200, reply.text
    urls = [item["url"] for item in reply.json()["data"]]
    assert len(urls) == 2 and all(url.startswith(f"{server.url}/v1/files/") for url in urls)
    for url in urls:
        file = client.get(url)
        assert file.status_code == 200 and file.headers["content-type"] == "image/png"
        assert sniff_mime_type(file.content) == "image/png"
    assert_error(client.get("/v1/files/" + "0" * 64), 404, param="file_id", code="not_found")


def test_n_with_a_seed_gives_distinct_consecutive_seeds(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    reply = api_client(server).post("/v1/images/generations", json={"prompt": "a cat", "n": 3, "seed": 40})
    assert reply.status_code == 200, reply.text
    seeds = [item["seed"] for item in reply.json()["data"]]
    assert seeds[0] == 40 and len(set(seeds)) == 3
    assert sorted(request.seed for _, request in recording_backend.calls) == sorted(seeds)
    images = {item["b64_json"] for item in reply.json()["data"]}
    assert len(images) == 3  # the seeds really reached the engine


@pytest.mark.parametrize("fields", [{"size": "48x40"}, {"width": 48, "height": 40}], ids=["size", "width-height"])
def test_size_and_width_height_set_the_image_size(live_server, api_client, recording_backend, fields):
    server = live_server(recording_backend)
    reply = api_client(server).post("/v1/images/generations", json={"prompt": "a cat", **fields})
    assert reply.status_code == 200, reply.text
    assert png_size(base64.b64decode(reply.json()["data"][0]["b64_json"])) == (48, 40)
    request = recording_backend.calls[-1][1]
    assert (request.width, request.height) == (48, 40)


@pytest.mark.parametrize("output_format, mime", [("jpeg", "image/jpeg"), ("webp", "image/webp"), ("png", "image/png")])
def test_output_format_converts_the_image(live_server, api_client, recording_backend, output_format, mime):
    server = live_server(recording_backend)
    client = api_client(server)
    body = {"prompt": "a cat", "output_format": output_format, "output_compression": 50}
    reply = client.post("/v1/images/generations", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["output_format"] == output_format
    assert sniff_mime_type(base64.b64decode(reply.json()["data"][0]["b64_json"])) == mime
    url = client.post("/v1/images/generations", json={**body, "response_format": "url"}).json()["data"][0]["url"]
    file = client.get(url)
    assert file.headers["content-type"] == mime and sniff_mime_type(file.content) == mime


def test_unknown_fields_reach_the_backends_extra(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    body = {
        "prompt": "a cat",
        "steps": 7,
        "guidance_scale": 4.5,
        "negative_prompt": "fog",
        "sampler": "euler_a",
        "hires_fix": {"upscale": 1.5, "steps": 4},  # (lora is a field of its own: see test_api_lora.py)
    }
    reply = api_client(server).post("/v1/images/generations", json=body)
    assert reply.status_code == 200, reply.text
    request = recording_backend.calls[-1][1]
    assert (request.steps, request.guidance_scale, request.negative_prompt) == (7, 4.5, "fog")
    assert request.extra == {"sampler": "euler_a", "hires_fix": {"upscale": 1.5, "steps": 4}}


def test_openai_only_fields_do_not_reach_a_local_engine(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    body = {"prompt": "a cat", "quality": "high", "style": "vivid", "user": "u-1", "moderation": "low"}
    assert api_client(server).post("/v1/images/generations", json=body).status_code == 200
    assert recording_backend.calls[-1][1].extra == {}


def test_edit_with_one_image(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    image = make_png(24, 24, (1, 2, 3))
    reply = api_client(server).post(
        "/v1/images/edits",
        data={"prompt": "make it blue", "seed": "3", "steps": "2", "strength": "0.4", "sampler": "euler"},
        files={"image": ("in.png", image, "image/png")},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"][0]["seed"] == 3
    task, request = recording_backend.calls[-1]
    assert task == "image_to_image" and request.prompt == "make it blue" and request.image == image
    assert (request.seed, request.steps, request.mask) == (3, 2, None)
    assert request.extra == {"strength": 0.4, "sampler": "euler"}  # form strings arrive typed


def test_edit_with_several_images_and_a_mask(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    images = [make_png(24, 24, (i, i, i)) for i in (10, 20, 30)]
    mask = make_png(24, 24, mode="L")
    files = [("image[]", (f"in{i}.png", data, "image/png")) for i, data in enumerate(images)]
    files.append(("mask", ("mask.png", mask, "image/png")))
    reply = api_client(server).post("/v1/images/edits", data={"prompt": "blend", "n": "2"}, files=files)
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"]) == 2
    for task, request in recording_backend.calls:
        assert task == "image_to_image" and request.image == images[0] and request.mask == mask
        assert request.extra["reference_images"] == images[1:]


def test_edit_with_repeated_image_fields(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    images = [make_png(16, 16, (i, 0, 0)) for i in (1, 2)]
    files = [("image", (f"in{i}.png", data, "image/png")) for i, data in enumerate(images)]
    reply = api_client(server).post("/v1/images/edits", data={"prompt": "blend"}, files=files)
    assert reply.status_code == 200, reply.text
    request = recording_backend.calls[-1][1]
    assert request.image == images[0] and request.extra["reference_images"] == images[1:]


def test_edit_refuses_a_missing_or_broken_image(live_server, api_client, recording_backend):
    server = live_server(recording_backend)
    client = api_client(server)
    assert_error(
        client.post("/v1/images/edits", data={"prompt": "x"}, files={"other": ("a", b"x")}), 400, param="image"
    )
    broken = client.post("/v1/images/edits", data={"prompt": "x"}, files={"image": ("a.png", b"not an image")})
    assert_error(broken, 400, param="image")
    assert recording_backend.calls == []


@pytest.mark.parametrize("path", ["/v1/images/generations", "/v1/images/edits"])
def test_stream_sends_partial_images_then_the_result(live_server, api_client, path):
    server = live_server(SlowBackend(SlowConfig(step_s=0.01, steps=4, previews=True)))
    body = {"prompt": "a cat", "stream": "true", "partial_images": "2", "seed": "5"}
    if path.endswith("edits"):
        kwargs = {"data": body, "files": {"image": ("in.png", make_png(), "image/png")}}
        prefix = "image_edit"
    else:
        kwargs = {"json": {**body, "stream": True, "partial_images": 2, "seed": 5}}
        prefix = "image_generation"
    events = stream_events(api_client(server), "POST", path, **kwargs)
    assert [event["type"] for event in events] == [f"{prefix}.partial_image"] * 2 + [f"{prefix}.completed"]
    assert [event["partial_image_index"] for event in events[:2]] == [0, 1]
    for event in events:
        assert sniff_mime_type(base64.b64decode(event["b64_json"])) == "image/png"
    assert events[-1]["seed"] == 5 and events[-1]["size"] == "32x32" and "usage" in events[-1]
