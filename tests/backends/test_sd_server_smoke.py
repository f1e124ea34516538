"""The real sd-server answers as the OpenAI-shaped server our HTTP backends talk to.

Raw HTTP on purpose (not the library's backend): this pins what the engine itself does, so a
backend test that fails later can be told apart from a change in the server.
"""

from __future__ import annotations

import base64
import json
import struct

import httpx
import pytest

pytestmark = pytest.mark.slow


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.timeout(600)  # the first use in a session may build sd-server (~3 min) and the checkpoint
def test_sd_server_lists_its_model_and_generates_a_png_of_the_asked_size(sd_server):
    assert sd_server.base_url.endswith("/v1")
    with httpx.Client(base_url=sd_server.base_url, timeout=120) as client:
        models = client.get("/models")
        assert models.status_code == 200
        assert [model["id"] for model in models.json()["data"]] == ["sd-cpp-local"]

        extra = json.dumps({"steps": 1, "seed": 7})
        reply = client.post(
            "/images/generations",
            json={"prompt": f"a lighthouse<sd_cpp_extra_args>{extra}</sd_cpp_extra_args>", "size": "64x64"},
        )
    assert reply.status_code == 200, reply.text
    images = reply.json()["data"]
    assert len(images) == 1
    assert png_size(base64.b64decode(images[0]["b64_json"])) == (64, 64)
    assert sd_server.process.poll() is None
