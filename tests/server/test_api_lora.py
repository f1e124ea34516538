"""LoRA adapters over HTTP: ``GET /v1/adapters``, the ``lora`` field on generations, edits and jobs
(JSON objects, ``NAME[:SCALE]`` words, multipart fields, the official SDK), its effect on the image,
its provenance, and the allow-list: only adapters the backend lists, anything else refused with 404
``adapter_not_found`` before a job exists.

The engine is the slow test backend with a ``lora_dir`` (each adapter shifts its colour by the
adapter's name and scale), so an adapter's effect is a pixel a test can check.
"""

from __future__ import annotations

import base64
import io
import json

import openai
import pytest

from abstractvision import VisionManager
from abstractvision.testing.slow import SlowBackend, SlowConfig
from fixtures.images import make_png
from fixtures.loras import pixel
from fixtures.server_api import assert_error, wait_for_status

pytestmark = pytest.mark.timeout(60)

GENERATE = "/v1/images/generations"


def slow(lora_folder=None) -> SlowBackend:
    return SlowBackend(SlowConfig(step_s=0.0, steps=2, lora_dir=str(lora_folder) if lora_folder else None))


@pytest.fixture
def served(live_server, api_client, lora_folder):
    """(client, backend) of a server over the slow backend with ``lora_folder`` as its lora_dir."""
    backend = slow(lora_folder)
    return api_client(live_server(backend, model_id="slow-1")), backend


def colour_of(reply) -> tuple[int, ...]:
    assert reply.status_code == 200, reply.text
    (item,) = reply.json()["data"]
    return pixel(base64.b64decode(item["b64_json"]))


def direct_colour(lora_folder, **params) -> tuple[int, ...]:
    """The same request through the library, no server: what the engine makes of it."""
    return pixel(VisionManager(backend=slow(lora_folder)).generate_image("a", **params).data)


def test_adapters_lists_the_backends_adapters_by_id_without_their_paths(served, lora_folder):
    client, _ = served
    body = client.get("/v1/adapters").json()
    sizes = {name: (lora_folder / f"{name}.safetensors").stat().st_size for name in ("glow", "ink")}
    assert body == {
        "object": "list",
        "data": [
            {"id": name, "object": "adapter", "weight_name": None, "size_bytes": sizes[name]}
            for name in ("glow", "ink")
        ],
    }
    assert str(lora_folder) not in json.dumps(body)  # the server's disk layout stays on the server
    assert client.get("/v1/capabilities").json()["features"]["lora"] is True
    assert_error(client.get("/v1/adapters", params={"model": "other"}), 404, param="model", code="model_not_found")


def test_lora_on_a_generation_changes_the_image_as_the_engine_does_and_is_recorded(served, lora_folder):
    client, _ = served
    baseline = colour_of(client.post(GENERATE, json={"prompt": "a", "seed": 7}))
    reply = client.post(GENERATE, json={"prompt": "a", "seed": 7, "lora": [{"source": "ink", "scale": 0.5}, "glow"]})
    both = colour_of(reply)
    assert both != baseline
    assert both == direct_colour(lora_folder, seed=7, lora_adapters=["ink:0.5", "glow"])
    (item,) = reply.json()["data"]
    assert item["metadata"]["lora_adapters"] == [{"source": "ink", "scale": 0.5}, {"source": "glow", "scale": 1.0}]
    words = colour_of(client.post(GENERATE, json={"prompt": "a", "seed": 7, "lora": ["ink:0.5", "glow:1"]}))
    assert words == both  # the short form is the same request
    assert colour_of(client.post(GENERATE, json={"prompt": "a", "seed": 7, "lora": ["ink:0"]})) == baseline
    stronger = colour_of(client.post(GENERATE, json={"prompt": "a", "seed": 7, "lora": ["ink:1"]}))
    assert stronger not in (baseline, both)


def test_lora_on_edits_as_repeated_fields_a_json_array_or_the_sdks_lora_brackets(served, lora_folder):
    client, _ = served
    image = {"image": ("in.png", make_png(16, 16))}
    expected = direct_colour(lora_folder, seed=3, lora_adapters=["ink:0.5", "glow"])
    forms = (
        {"lora": ["ink:0.5", "glow"]},
        {"lora": json.dumps(["ink:0.5", {"source": "glow"}])},
        {"lora[]": ["ink:0.5", "glow"]},
    )
    for form in forms:
        reply = client.post("/v1/images/edits", data={"prompt": "a", "seed": "3", **form}, files=image)
        assert colour_of(reply) == expected, form
        (item,) = reply.json()["data"]
        assert item["metadata"]["task"] == "image_to_image"
        assert [a["source"] for a in item["metadata"]["lora_adapters"]] == ["ink", "glow"]


def test_lora_on_the_jobs_api(served, lora_folder):
    client, _ = served
    job = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a", "seed": 2, "lora": ["glow:2"]})
    assert job.status_code == 202, job.text
    view = wait_for_status(client, job.json()["id"], "completed")
    (result,) = view["result"]
    assert result["metadata"]["lora_adapters"] == [{"source": "glow", "scale": 2.0}]
    made = client.get(f"/v1/files/{result['file_id']}").content
    assert pixel(made) == direct_colour(lora_folder, seed=2, lora_adapters=["glow:2"])
    video = client.post("/v1/jobs", json={"task": "text_to_video", "prompt": "a", "lora": ["glow"]})
    assert_error(video, 400, param="lora")


@pytest.mark.parametrize(
    "lora",
    [
        ["/etc/passwd"],
        ["../outside.safetensors"],
        ["ink.safetensors"],  # the file's name is not its id
        ["ink", "sketch:0.5"],
        [{"source": "ink", "subfolder": "x"}],
        [{"source": "ink", "weight_name": "other.safetensors"}],
    ],
)
def test_an_adapter_the_backend_does_not_list_is_404_before_any_job(served, lora_folder, lora):
    client, backend = served
    reply = client.post(GENERATE, json={"prompt": "a", "lora": lora})
    error = assert_error(reply, 404, param="lora", code="adapter_not_found")
    assert "GET /v1/adapters" in error["message"]
    assert "is not offered by this server" in error["message"]
    edit = client.post(
        "/v1/images/edits", data={"prompt": "a", "lora": json.dumps(lora)}, files={"image": ("a.png", make_png(8, 8))}
    )
    assert_error(edit, 404, param="lora", code="adapter_not_found")
    assert backend.runs == 0 and client.get("/v1/jobs").json()["data"] == []  # no job was made, none ran


def test_a_real_adapter_file_outside_the_listed_folder_is_refused_though_the_engine_could_load_it(served, lora_folder):
    client, backend = served
    outside = lora_folder.parent / "outside.safetensors"
    direct = VisionManager(backend=slow(lora_folder)).generate_image("a", lora_adapters=[str(outside)])
    assert direct.metadata["lora_adapters"]  # the library takes a path: that is what a server must not allow
    reply = client.post(GENERATE, json={"prompt": "a", "lora": [str(outside)]})
    error = assert_error(reply, 404, param="lora", code="adapter_not_found")
    assert str(outside) in error["message"]
    around = client.post(GENERATE, json={"prompt": "a", "lora_adapters": [str(outside)]})  # the manager's own name
    assert_error(around, 400, param="lora_adapters")
    job = client.post("/v1/jobs", json={"task": "text_to_image", "prompt": "a", "lora_adapters": [str(outside)]})
    assert_error(job, 400, param="lora_adapters")
    assert backend.runs == 0


@pytest.mark.parametrize(
    ("lora", "fragment"),
    [
        (["ink:20"], "lora[0].scale"),
        ([""], "lora[0]"),
        (["ink", "ink:0.5"], "a second adapter named 'ink'"),
        (["ink"] * 9, "at most 8"),
        ([{"source": "ink", "weight_name": "/etc/passwd"}], "lora[0].weight_name: must be a relative file"),
        ("ink", "lora"),
    ],
)
def test_malformed_lora_is_a_400_naming_the_field(served, lora, fragment):
    client, backend = served
    error = assert_error(client.post(GENERATE, json={"prompt": "a", "lora": lora}), 400)
    assert error["param"].startswith("lora") and fragment in error["message"]
    assert backend.runs == 0


def test_a_backend_without_lora_refuses_adapters_as_unsupported(live_server, api_client):
    backend = slow()
    client = api_client(live_server(backend))
    assert client.get("/v1/adapters").json() == {"object": "list", "data": []}
    assert client.get("/v1/capabilities").json()["features"]["lora"] is False
    reply = client.post(GENERATE, json={"prompt": "a", "lora": ["ink"]})
    error = assert_error(reply, 400, param="lora", code="unsupported")
    assert "features.lora" in error["message"]
    assert client.post(GENERATE, json={"prompt": "a", "lora": []}).status_code == 200  # none asked: nothing to refuse
    assert backend.runs == 1


def test_the_openai_sdk_sends_lora_through_extra_body(live_server, lora_folder):
    server = live_server(slow(lora_folder), model_id="slow-1")
    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=30) as client:
        made = client.images.generate(
            prompt="a", extra_body={"seed": 4, "lora": [{"source": "ink", "scale": 0.5}]}
        ).data[0]
        edited = client.images.edit(
            prompt="a", image=("in.png", make_png(16, 16)), extra_body={"seed": "4", "lora": ["ink:0.5"]}
        ).data[0]
        with pytest.raises(openai.NotFoundError) as refused:
            client.images.generate(prompt="a", extra_body={"lora": ["/etc/passwd"]})
    expected = direct_colour(lora_folder, seed=4, lora_adapters=["ink:0.5"])
    assert pixel(base64.b64decode(made.b64_json)) == expected
    assert pixel(base64.b64decode(edited.b64_json)) == expected
    assert made.metadata["lora_adapters"] == [{"source": "ink", "scale": 0.5}]  # type: ignore[attr-defined]
    assert refused.value.code == "adapter_not_found" and "/etc/passwd" in refused.value.message


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_real_adapters_on_the_tiny_diffusers_pipeline_through_the_server(
    live_server, api_client, tiny_diffusers_pipeline, tiny_loras
):
    """End to end on a real engine: the served Diffusers backend lists its lora_dir, a ``lora`` request
    makes the very pixels a direct library call makes with that adapter, and the next request without
    one is the baseline again (no adapter stays behind on the shared pipeline)."""
    from abstractvision.backends.huggingface_diffusers import (
        HuggingFaceDiffusersBackendConfig,
        HuggingFaceDiffusersVisionBackend,
    )

    def diffusers() -> HuggingFaceDiffusersVisionBackend:
        config = HuggingFaceDiffusersBackendConfig(
            model_id=str(tiny_diffusers_pipeline), device="cpu", lora_dir=str(tiny_loras)
        )
        return HuggingFaceDiffusersVisionBackend(config)

    client = api_client(live_server(diffusers(), model_id="tiny"))
    assert [entry["id"] for entry in client.get("/v1/adapters").json()["data"]] == ["a", "b"]
    call = {"prompt": "a cat", "size": "32x32", "steps": 2, "seed": 4}

    def served(**extra) -> bytes:
        reply = client.post(GENERATE, json={**call, **extra})
        assert reply.status_code == 200, reply.text
        return base64.b64decode(reply.json()["data"][0]["b64_json"])

    with VisionManager(backend=diffusers()) as direct:
        params = {"width": 32, "height": 32, "steps": 2, "seed": 4}
        with_adapter = direct.generate_image("a cat", lora_adapters=["a:0.7", "b"], **params)
        baseline = direct.generate_image("a cat", **params)
    assert rgb(served(lora=["a:0.7", "b"])) == rgb(with_adapter.data)
    assert rgb(served()) == rgb(baseline.data)
    assert rgb(with_adapter.data) != rgb(baseline.data)


def rgb(png: bytes) -> bytes:
    """The decoded pixels (the PNG bytes also carry metadata, which differs between calls)."""
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB").tobytes()
