"""Video against the loopback server: opt-in paths, synchronous data[] answers, OpenAI's job flow."""

from __future__ import annotations

import base64

import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import (
    CapabilityNotSupportedError,
    InvalidRequestError,
    ProviderError,
    RequestTimeoutError,
)
from fixtures.images import make_jpeg, make_png
from fixtures.openai_server import Reply

SYNC_T2V, SYNC_I2V = "/video/generations", "/video/image-to-video"


def manager_for(server, model_id="wan-video", **options):
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, model_id=model_id, **options)
    return server.track(VisionManager(backend=OpenAICompatibleVisionBackend(config=config)))


def test_video_is_opt_in(openai_server):
    manager = manager_for(openai_server)
    assert manager.backend.get_capabilities().supported_tasks == ("text_to_image", "image_to_image")
    with pytest.raises(CapabilityNotSupportedError):
        manager.generate_video("waves")
    with pytest.raises(CapabilityNotSupportedError):
        manager.image_to_video(make_png(16, 16))
    assert openai_server.requests == []


def test_sync_text_to_video_sends_local_fields_and_returns_mp4(openai_server):
    manager = manager_for(openai_server, text_to_video_path=SYNC_T2V)
    asset = manager.generate_video("waves", width=64, height=32, fps=8, num_frames=16, seed=9, steps=4)
    assert openai_server.last.path == "/v1/video/generations"
    assert openai_server.last.json == {
        "prompt": "waves",
        "model": "wan-video",
        "seed": 9,
        "steps": 4,
        "fps": 8,
        "num_frames": 16,
        "width": 64,
        "height": 32,
        "size": "64x32",
        "response_format": "b64_json",
    }
    assert asset.media_type == "video" and asset.mime_type == "video/mp4"
    assert asset.metadata["seed"] == 9 and asset.metadata["num_frames"] == 16


def test_sync_image_to_video_multipart(openai_server):
    manager = manager_for(openai_server, image_to_video_path=SYNC_I2V)
    asset = manager.image_to_video(make_jpeg(16, 16), "make it move", fps=4)
    request = openai_server.last
    assert request.form["prompt"] == ["make it move"] and request.form["fps"] == ["4"]
    (image,) = request.files["image"]
    assert (image.filename, image.content_type, image.data) == ("image.jpg", "image/jpeg", make_jpeg(16, 16))
    assert asset.mime_type == "video/mp4"


def test_sync_image_to_video_json_b64(openai_server):
    manager = manager_for(openai_server, image_to_video_path=SYNC_I2V, image_to_video_mode="json_b64")
    manager.image_to_video(make_png(16, 16), "drift")
    body = openai_server.last.json
    assert base64.b64decode(body["image"]) == make_png(16, 16)
    assert body["prompt"] == "drift"


def test_truncated_video_is_refused(openai_server):
    from fixtures.openai_server import make_mp4

    cut = base64.b64encode(make_mp4(b"x" * 100)[:-20]).decode()
    openai_server.enqueue(SYNC_T2V, Reply(json={"data": [{"b64_json": cut}]}))
    with pytest.raises(ProviderError, match="truncated"):
        manager_for(openai_server, text_to_video_path=SYNC_T2V).generate_video("waves")


def test_openai_video_job_polls_with_progress_and_downloads(openai_server):
    openai_server.video_polls = 4
    manager = manager_for(openai_server, "sora-2", text_to_video_path="/videos", poll_interval_s=0.01)
    events = []
    asset = manager.generate_video(
        "a drone shot", width=1280, height=720, extra={"seconds": 8}, on_progress=events.append
    )
    create = openai_server.requests_to("/videos")[0]
    assert create.json == {"prompt": "a drone shot", "model": "sora-2", "size": "1280x720", "seconds": "8"}
    polls = [r for r in openai_server.requests if r.method == "GET" and not r.path.endswith("/content")]
    assert len(polls) == 4
    assert openai_server.last.path.endswith("/content")
    steps = [e.step for e in events if e.phase == "step"]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 75
    assert events[0].phase == "start" and events[-1].phase == "end"
    assert asset.mime_type == "video/mp4" and asset.metadata["video_id"].startswith("video_")
    assert asset.metadata["seconds"] == "8" and asset.metadata["size"] == "1280x720"


def test_openai_image_to_video_sends_input_reference(openai_server):
    manager = manager_for(openai_server, "sora-2", image_to_video_path="/videos", poll_interval_s=0.01)
    manager.image_to_video(make_png(16, 16), "animate", extra={"seconds": "4"})
    create = openai_server.requests_to("/videos")[0]
    assert create.form == {"prompt": ["animate"], "model": ["sora-2"], "seconds": ["4"]}
    assert create.files["input_reference"][0].filename == "image.png"


def test_sora_rejects_values_before_sending(openai_server):
    manager = manager_for(openai_server, "sora-2", text_to_video_path="/videos", strict_params=True)
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_video("x", width=1024, height=1792)
    assert info.value.field == "width" and "720x1280, 1280x720" in str(info.value)
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_video("x", extra={"seconds": 5})
    assert info.value.field == "seconds" and "4, 8, 12" in str(info.value)
    with pytest.raises(InvalidRequestError) as info:
        manager.generate_video("x", fps=24)
    assert info.value.field == "fps"
    assert openai_server.requests == []


def test_failed_job_is_a_provider_error_with_its_reason(openai_server):
    openai_server.video_job_fails = True
    manager = manager_for(openai_server, "sora-2", text_to_video_path="/videos", poll_interval_s=0.01)
    with pytest.raises(ProviderError, match="the prompt was blocked"):
        manager.generate_video("x")
    assert not any(r.path.endswith("/content") for r in openai_server.requests)


def test_polling_is_bounded_by_job_timeout_s(openai_server):
    openai_server.video_polls = 1000
    manager = manager_for(
        openai_server, "sora-2", text_to_video_path="/videos", poll_interval_s=0.05, job_timeout_s=0.2
    )
    with pytest.raises(RequestTimeoutError, match="job_timeout_s=0.2"):
        manager.generate_video("x")
    assert len(openai_server.requests) < 10
