"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (tests/fixtures/openai_server.py).

Basics: configuration, the local request shape, edits as multipart, the model catalog.
"""

from __future__ import annotations

import pytest

from abstractvision import VisionManager
from abstractvision.backends import create_backend
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import BackendNotConfiguredError
from abstractvision.media import read_png_metadata
from fixtures.images import make_jpeg, make_png

SECRET = "sk-test-secret-abc"


def make_backend(server, **options) -> OpenAICompatibleVisionBackend:
    options.setdefault("model_id", "sd-local")
    return server.track(
        OpenAICompatibleVisionBackend(config=OpenAICompatibleBackendConfig(base_url=server.base_url, **options))
    )


@pytest.fixture
def manager(openai_server):
    with VisionManager(backend=make_backend(openai_server, api_key=SECRET)) as manager:
        yield manager


# ---- configuration --------------------------------------------------------------------------------
def test_missing_base_url_names_every_way_to_set_it():
    with pytest.raises(BackendNotConfiguredError) as info:
        create_backend("openai", environ={})
    message = str(info.value)
    for hint in ("base_url=", "--base-url", "OPENAI_BASE_URL", "ABSTRACTVISION_BASE_URL"):
        assert hint in message


def test_create_backend_explicit_beats_environment_beats_default():
    env = {
        "OPENAI_BASE_URL": "http://env.example/v1/",
        "OPENAI_API_KEY": SECRET,
        "ABSTRACTVISION_MODEL_ID": "env-model",
        "ABSTRACTVISION_TIMEOUT_S": "12",
        "ABSTRACTVISION_MAX_RETRIES": "5",
        "OPENAI_ORG_ID": "org-1",
        "ABSTRACTVISION_TEXT_TO_VIDEO_PATH": "/videos",
        "ABSTRACTVISION_IMAGE_TO_VIDEO_MODE": "json_b64",
    }
    config = create_backend("openai", environ=env, model_id="explicit", timeout_s=None).config
    assert config.base_url == "http://env.example/v1"
    assert config.model_id == "explicit"
    assert config.timeout_s == 12.0 and config.max_retries == 5
    assert config.api_key == SECRET and config.organization == "org-1"
    assert config.text_to_video_path == "/videos" and config.image_to_video_mode == "json_b64"
    assert config.image_edits_path == "/images/edits"  # default
    assert SECRET not in repr(config)


def test_create_backend_by_name_uses_settings(openai_server):
    backend = create_backend("openai", environ={"OPENAI_BASE_URL": openai_server.base_url})
    assert isinstance(backend, OpenAICompatibleVisionBackend)
    assert backend.config.base_url == openai_server.base_url


@pytest.mark.parametrize(
    "options",
    [{"base_url": "ftp://x/v1"}, {"image_to_video_mode": "base64"}, {"timeout_s": 0}, {"max_retries": -1}],
    ids=["scheme", "i2v-mode", "timeout", "retries"],
)
def test_bad_config_is_a_typed_error(options):
    with pytest.raises(BackendNotConfiguredError):
        OpenAICompatibleBackendConfig(**{"base_url": "http://127.0.0.1:1/v1", **options})


def test_key_is_sent_as_bearer_and_never_shown(manager, openai_server):
    asset = manager.generate_image("a cat")
    assert openai_server.last.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(manager.backend) and SECRET not in repr(manager)
    assert SECRET not in str(asset.metadata) and SECRET.encode() not in asset.data


def test_organization_project_and_extra_headers_are_sent(openai_server):
    backend = make_backend(openai_server, organization="org-9", project="proj-9", extra_headers={"X-Relay": "r"})
    backend.generate_image_with_progress(_request("a cat"))
    headers = openai_server.last.headers
    assert headers["openai-organization"] == "org-9"
    assert headers["openai-project"] == "proj-9"
    assert headers["x-relay"] == "r"
    assert "authorization" not in headers  # no key configured, none sent


def _request(prompt: str, **fields):
    from abstractvision.types import ImageGenerationRequest

    return ImageGenerationRequest(prompt=prompt, **fields)


# ---- text to image: the local shape ---------------------------------------------------------------
def test_local_endpoint_gets_the_extension_fields(manager, openai_server):
    asset = manager.generate_image(
        "a red fox",
        negative_prompt="blurry",
        width=24,
        height=16,
        seed=7,
        steps=3,
        guidance_scale=4.5,
        extra={"sampler": "euler", "clip_skip": 2, "hires": True},
    )
    body = openai_server.last.json
    assert openai_server.last.path == "/v1/images/generations"
    assert body == {
        "prompt": "a red fox",
        "model": "sd-local",
        "negative_prompt": "blurry",
        "width": 24,
        "height": 16,
        "size": "24x16",
        "seed": 7,
        "steps": 3,
        "guidance_scale": 4.5,
        "response_format": "b64_json",
        "sampler": "euler",
        "clip_skip": 2,
        "hires": True,
    }
    assert asset.mime_type == "image/png"
    from fixtures.openai_server import server_png

    assert asset.data != server_png(24, 16)  # metadata was embedded
    meta = asset.metadata
    assert meta["seed"] == 7 and meta["steps"] == 3 and meta["guidance_scale"] == 4.5
    assert meta["size"] == "24x16" and meta["model"] == "sd-local"
    assert meta["endpoint"] == "/images/generations" and isinstance(meta["created"], int)
    assert meta["http_s"] >= 0 and meta["backend"] == "openai"
    assert read_png_metadata(asset.data)["seed"] == 7


def test_unset_fields_are_not_sent(manager, openai_server):
    manager.generate_image("a cat")
    assert openai_server.last.json == {"prompt": "a cat", "model": "sd-local", "response_format": "b64_json"}


# ---- edits ------------------------------------------------------------------------------------------
def test_edit_sends_multipart_with_real_filenames_and_types(manager, openai_server):
    asset = manager.edit_image("make it blue", make_jpeg(32, 32), mask=make_png(32, 32, mode="L"), seed=5, steps=2)
    request = openai_server.last
    assert request.path == "/v1/images/edits"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert request.form == {
        "prompt": ["make it blue"],
        "model": ["sd-local"],
        "seed": ["5"],
        "steps": ["2"],
        "response_format": ["b64_json"],
    }
    (image,) = request.files["image"]
    (mask,) = request.files["mask"]
    assert (image.filename, image.content_type) == ("image.jpg", "image/jpeg")
    assert image.data == make_jpeg(32, 32)
    assert (mask.filename, mask.content_type) == ("mask.png", "image/png")
    assert asset.metadata["task"] == "image_to_image" and asset.metadata["seed"] == 5


# ---- catalog --------------------------------------------------------------------------------------
def test_list_provider_models_reads_the_catalog_and_selects_nothing(manager, openai_server):
    models = manager.list_provider_models()
    assert [m.id for m in models] == ["sd-local", "wan-video"]
    assert models[0].owned_by == "local" and models[0].created == 1700000000
    assert openai_server.last.path == "/v1/models"
    assert openai_server.last.headers["authorization"] == f"Bearer {SECRET}"
    assert manager.backend.config.model_id == "sd-local"


def test_catalog_filters_by_advertised_task_and_keeps_unhinted_entries(manager, openai_server):
    openai_server.models = [
        {"id": "flux", "object": "model", "capabilities": ["text-to-image", "image-to-image"]},
        {"id": "wan", "object": "model", "modalities": ["video"]},
        {"id": "llama", "object": "model", "capabilities": ["chat"]},
        {"id": "mystery", "object": "model"},
    ]
    assert [m.id for m in manager.list_provider_models(task="text_to_image")] == ["flux", "mystery"]
    assert [m.id for m in manager.list_provider_models(task="image_to_video")] == ["wan", "mystery"]
    by_id = {m.id: m for m in manager.list_provider_models()}
    assert by_id["flux"].capabilities == ("text_to_image", "image_to_image")
    assert by_id["llama"].capabilities == () and by_id["mystery"].raw == {"id": "mystery", "object": "model"}
    assert manager.backend.config.model_id == "sd-local"


def test_openai_catalog_without_hints_keeps_only_image_and_video_families():
    from abstractvision.backends._openai_catalog import filter_models, parse_catalog

    payload = {"data": [{"id": name} for name in ("gpt-4o", "gpt-image-1", "dall-e-3", "sora-2", "whisper-1")]}
    models = parse_catalog(payload, "models", openai=True)
    assert [m.id for m in filter_models(models, "text_to_image", openai=True)] == ["gpt-image-1", "dall-e-3"]
    assert [m.id for m in filter_models(models, "image_to_image", openai=True)] == ["gpt-image-1"]
    assert [m.id for m in filter_models(models, "text_to_video", openai=True)] == ["sora-2"]
    assert len(filter_models(models, None, openai=True)) == 5


@pytest.mark.parametrize("model", ["gpt-image-1.5", "chatgpt-image-latest", "dall-e-2", "dall-e-3", "sora-2-pro"])
def test_the_catalog_and_the_backend_agree_on_what_an_openai_model_does(model, block_network):
    from abstractvision.backends._openai_catalog import parse_catalog

    [listed] = parse_catalog({"data": [{"id": model}]}, "models", openai=True)
    video = {"text_to_video_path": "/videos", "image_to_video_path": "/videos"} if model.startswith("sora") else {}
    config = OpenAICompatibleBackendConfig(base_url="https://api.openai.com/v1", model_id=model, **video)
    assert OpenAICompatibleVisionBackend(config=config).get_capabilities().supported_tasks == listed.capabilities


def test_malformed_catalog_is_a_typed_error(manager, openai_server):
    from abstractvision.errors import InvalidProviderResponseError
    from fixtures.openai_server import Reply

    openai_server.enqueue("/models", Reply(json={"object": "list", "data": "nope"}))
    with pytest.raises(InvalidProviderResponseError):
        manager.list_provider_models()


# ---- streaming partial images ----------------------------------------------------------------------------
def test_partial_images_stream_as_previews_and_the_final_image_is_returned(openai_server):
    backend = make_backend(openai_server, model_id="gpt-image-1")
    events = []
    asset = VisionManager(backend=backend).generate_image(
        "a fox", extra={"partial_images": 2}, on_progress=events.append
    )
    assert openai_server.last.json == {"prompt": "a fox", "model": "gpt-image-1", "partial_images": 2, "stream": True}
    assert openai_server.last.headers["accept"] == "text/event-stream"
    previews = [e for e in events if e.phase == "preview"]
    assert [(e.step, e.total_steps) for e in previews] == [(1, 2), (2, 2)]
    assert all(p.preview.startswith(b"\x89PNG") for p in previews)
    assert [e.phase for e in events] == ["start", "preview", "preview", "end"]
    assert asset.mime_type == "image/png" and asset.metadata["usage"]["total_tokens"] == 30


def test_streamed_edit_and_cancel_on_first_preview(openai_server):
    from abstractvision.errors import GenerationCancelledError

    manager = VisionManager(backend=make_backend(openai_server, model_id="gpt-image-1"))
    asset = manager.edit_image("sketch", make_png(16, 16), extra={"partial_images": 1})
    assert openai_server.last.form["stream"] == ["true"] and asset.data

    def stop(event):
        if event.phase == "preview":
            raise GenerationCancelledError("enough")

    with pytest.raises(GenerationCancelledError):
        manager.generate_image("a fox", extra={"partial_images": 3}, on_progress=stop)


def test_a_config_built_directly_strips_its_key_and_refuses_one_with_a_line_break(openai_server):
    assert OpenAICompatibleBackendConfig(base_url=openai_server.base_url, api_key=" sk-abc\n").api_key == "sk-abc"
    assert OpenAICompatibleBackendConfig(base_url=openai_server.base_url, api_key="  ").api_key is None
    with pytest.raises(BackendNotConfiguredError) as info:
        OpenAICompatibleBackendConfig(base_url=openai_server.base_url, api_key="sk-abc\nX-Injected: 1")
    assert "sk-abc" not in str(info.value) and "api_key" in str(info.value)
