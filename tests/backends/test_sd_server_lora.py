"""LoRA through the OpenAI backend to the real sd-server 0.4.5, started with ``--lora-model-dir`` (auto dialect).

What must hold on the engine: the adapter reaches the sampler (other pixels than without it, the same
pixels as the local sd-cli with the same adapter), the server's listing is the backend's adapter
catalog, and a name the server does not have is refused before anything is generated. One more fact of
sd-server 0.4.5 is pinned because the docs warn about it: a request without adapters after one with
them is not the baseline again (the server subtracts the merged adapter; f16 rounding stays).
"""

from __future__ import annotations

import io

import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend
from abstractvision.errors import AdapterNotAvailableError
from fixtures.sdcpp import ensure_sd_cli
from fixtures.sdcpp_server import start_sd_server, stop

pytestmark = pytest.mark.slow

PROMPT = "a lighthouse at dusk"
RUN = {"width": 64, "height": 64, "steps": 1, "seed": 5, "guidance_scale": 7.0}


def pixels(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (64, 64)
        return image.convert("RGB").tobytes()


@pytest.fixture(scope="module")
def lora_server(sd15_checkpoint, sd15_loras, tmp_path_factory):
    binary = ensure_sd_cli().with_name("sd-server")
    server = start_sd_server(binary, sd15_checkpoint, tmp_path_factory.mktemp("sd-server-lora"), lora_dir=sd15_loras)
    yield server
    stop(server.process)


@pytest.fixture(scope="module")
def manager(lora_server):
    backend = OpenAICompatibleVisionBackend(config=OpenAICompatibleBackendConfig(base_url=lora_server.base_url))
    with VisionManager(backend=backend) as vm:
        yield vm


@pytest.mark.timeout(600)  # the first use in a session may build sd-server and the checkpoint
def test_an_adapter_changes_the_image_like_the_local_engine_and_045_keeps_a_trace(
    manager, sd_cli_binary, sd15_checkpoint, sd15_loras
):
    base = manager.generate_image(PROMPT, **RUN)
    lora = manager.generate_image(PROMPT, lora_adapters=["ink:0.8"], **RUN)
    after = manager.generate_image(PROMPT, **RUN)
    local = StableDiffusionCppVisionBackend(
        model=str(sd15_checkpoint), sd_cli_path=str(sd_cli_binary), mode="cli", lora_dir=str(sd15_loras)
    )
    same = VisionManager(backend=local).generate_image(PROMPT, lora_adapters=["ink:0.8"], **RUN)
    assert lora.metadata["dialect"] == "sdcpp" and lora.metadata["endpoint"] == "/sdapi/v1/txt2img"
    assert lora.metadata["lora"] == [{"path": "ink.safetensors", "multiplier": 0.8}]
    assert pixels(lora.data) != pixels(base.data)
    assert pixels(lora.data) == pixels(same.data)
    assert pixels(after.data) != pixels(base.data)  # sd-server 0.4.5: the adapter leaves a trace (docs warn)


@pytest.mark.timeout(300)
def test_the_servers_listing_is_the_adapter_catalog_and_unknown_names_are_refused(manager):
    assert [(a.id, a.path) for a in manager.list_provider_adapters()] == [
        ("ink", "ink.safetensors"),
        ("wash", "wash.safetensors"),
    ]
    with pytest.raises(AdapterNotAvailableError) as info:
        manager.generate_image(PROMPT, lora_adapters=["grain"], **RUN)
    assert info.value.adapter == "grain" and "ink, wash" in str(info.value)  # (no request is sent: fast tests)
