"""One request, written once, runs unchanged on every engine (issue 14: portable generation controls).

The same keyword arguments go to OpenAI's gpt-image-1 (which takes none of the local controls: they
are dropped and listed), a generic OpenAI-shaped local server (they are sent), Diffusers (the tiny
pipeline) and stable-diffusion.cpp (sd-cli). No engine-specific branch in the caller's code.

The real local engines run it at 64x64: on this 2-core CPU, SD 1.x at 1024x1024 takes about 10
minutes per step in sd-cli (measured: 582 s of sampling) and even the tiny random pipeline takes
about 5 minutes (its attention over 128x128 latents). So the 1024x1024 leg of sd.cpp runs through
the fake sd-cli (a real process; its command line is checked), and the real engines check the rest.
"""

from __future__ import annotations

import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend

REQUEST = {"seed": 9, "steps": 2, "guidance_scale": 6.5, "negative_prompt": "fog", "width": 1024, "height": 1024}
LOCAL_CONTROLS = ["guidance_scale", "negative_prompt", "seed", "steps"]


def generate(backend) -> object:
    return VisionManager(backend=backend).generate_image("a lighthouse at dawn", **REQUEST)


def openai_backend(server, model_id: str) -> OpenAICompatibleVisionBackend:
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, model_id=model_id)
    return server.track(OpenAICompatibleVisionBackend(config=config))


def test_on_gpt_image_the_local_controls_are_dropped_and_listed(openai_server):
    asset = generate(openai_backend(openai_server, "gpt-image-1"))
    assert openai_server.last.json == {"prompt": "a lighthouse at dawn", "model": "gpt-image-1", "size": "1024x1024"}
    assert asset.metadata["ignored_params"] == LOCAL_CONTROLS


def test_on_a_generic_local_server_every_control_is_sent(openai_server):
    asset = generate(openai_backend(openai_server, "sd-local"))
    sent = openai_server.last.json
    assert {name: sent[name] for name in LOCAL_CONTROLS} == {name: REQUEST[name] for name in LOCAL_CONTROLS}
    assert sent["size"] == "1024x1024" and "ignored_params" not in asset.metadata


@pytest.mark.slow
def test_on_diffusers_it_runs_as_asked(tiny_diffusers_backend):
    from abstractvision.media import inspect_image

    small = {**REQUEST, "width": 64, "height": 64}  # see the module docstring
    asset = VisionManager(backend=tiny_diffusers_backend).generate_image("a lighthouse at dawn", **small)
    info = inspect_image(asset.data)
    assert (info.width, info.height) == (64, 64)
    meta = asset.metadata
    assert (meta["seed"], meta["steps"], meta["guidance_scale"], meta["negative_prompt"]) == (9, 2, 6.5, "fog")
    assert "ignored_params" not in meta


def test_on_sd_cli_every_control_reaches_the_command_line(fake_sd_cli, model_file):
    backend = StableDiffusionCppVisionBackend(model=str(model_file), sd_cli_path=str(fake_sd_cli.path), mode="cli")
    asset = generate(backend)
    argv = fake_sd_cli.last_argv()
    flags = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("-")}
    assert (flags["-W"], flags["-H"], flags["-s"], flags["--steps"]) == ("1024", "1024", "9", "2")
    assert (flags["--cfg-scale"], flags["-n"]) == ("6.5", "fog")
    assert asset.metadata["seed"] == 9 and "ignored_params" not in asset.metadata


@pytest.mark.slow
def test_on_the_real_sd_cli_the_same_controls_make_the_picture(sd_cli_binary, sd15_checkpoint):
    backend = StableDiffusionCppVisionBackend(model=str(sd15_checkpoint), sd_cli_path=str(sd_cli_binary), mode="cli")
    manager = VisionManager(backend=backend)
    small = {**REQUEST, "width": 64, "height": 64}  # see the module docstring
    first = manager.generate_image("a lighthouse at dawn", **small)
    again = manager.generate_image("a lighthouse at dawn", **small)
    other = manager.generate_image("a lighthouse at dawn", **{**small, "negative_prompt": "sun"})
    meta = first.metadata
    assert (meta["seed"], meta["steps"], meta["negative_prompt"]) == (9, 2, "fog")
    assert pixels(first.data) == pixels(again.data) and pixels(first.data) != pixels(other.data)


def pixels(data: bytes) -> bytes:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB").tobytes()
