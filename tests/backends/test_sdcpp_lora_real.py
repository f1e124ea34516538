"""LoRA on stable-diffusion.cpp for real: sd-cli and the bindings, the random SD 1.x file, random adapters.

The adapters (``fixtures/sdcpp_lora.py``) are kohya-layout updates of every UNet attention projection;
sd-cli logs all 384 of their tensors as applied. 64x64, one step: each sd-cli run still loads the 2 GB
checkpoint (seconds), so the comparisons share runs where they can.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from abstractvision import VisionManager
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend
from abstractvision.errors import AdapterNotAvailableError

pytestmark = pytest.mark.slow

PROMPT = "a lighthouse at dusk"
RUN = {"width": 64, "height": 64, "steps": 1, "seed": 5, "guidance_scale": 7.0}
DIRECT = ("-W", "64", "-H", "64", "--steps", "1", "-s", "5", "--cfg-scale", "7.0")


def pixels(data: bytes) -> bytes:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (64, 64)
        return image.convert("RGB").tobytes()


def direct_sd_cli(sd_cli, checkpoint, folder: Path, *args: str) -> tuple[bytes, str]:
    """sd-cli run by hand: the image and its log."""
    output = folder / "direct.png"
    done = subprocess.run(
        [str(sd_cli), "-m", str(checkpoint), *args, "-o", str(output)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return output.read_bytes(), done.stdout + done.stderr


@pytest.fixture(scope="module")
def cli_runs(sd_cli_binary, sd15_checkpoint, sd15_loras, tmp_path_factory):
    """The CLI backend's baseline, its run with ``ink`` at 0.8, a run without after it, and sd-cli by hand."""
    backend = StableDiffusionCppVisionBackend(
        model=str(sd15_checkpoint), sd_cli_path=str(sd_cli_binary), mode="cli", lora_dir=str(sd15_loras)
    )
    manager = VisionManager(backend=backend)
    base = manager.generate_image(PROMPT, **RUN)
    lora = manager.generate_image(PROMPT, lora_adapters=["ink:0.8"], **RUN)
    after = manager.generate_image(PROMPT, **RUN)
    direct, log = direct_sd_cli(
        sd_cli_binary, sd15_checkpoint, tmp_path_factory.mktemp("direct"),
        "-p", PROMPT + "<lora:ink.safetensors:0.8>", "--lora-model-dir", str(sd15_loras), *DIRECT,
    )  # fmt: skip
    return {"base": base, "lora": lora, "after": after, "direct": direct, "direct_log": log}


@pytest.mark.timeout(600)
def test_cli_adapter_changes_the_image_and_equals_sd_cli_run_by_hand(cli_runs):
    assert "(384 / 384) LoRA tensors have been applied" in cli_runs["direct_log"]  # the fixture's layout is read
    assert pixels(cli_runs["lora"].data) != pixels(cli_runs["base"].data)
    assert pixels(cli_runs["lora"].data) == pixels(cli_runs["direct"])
    assert cli_runs["lora"].metadata["lora_adapters"] == [{"source": "ink", "scale": 0.8}]
    assert cli_runs["lora"].metadata["lora_files"] == {"ink": "ink.safetensors"}


@pytest.mark.timeout(600)
def test_cli_a_call_without_adapters_after_one_with_is_the_baseline(cli_runs):
    assert pixels(cli_runs["after"].data) == pixels(cli_runs["base"].data)


@pytest.mark.timeout(600)
def test_python_mode_gives_the_cli_pixels_and_no_adapter_outlives_its_call(sd_python_backend, sd15_loras, cli_runs):
    """The bindings merge an adapter into the loaded weights; the backend reloads them when the next
    call's adapters differ, so a call without adapters is the baseline again (and the same adapters
    twice in a row need no reload)."""
    manager = VisionManager(backend=sd_python_backend)
    ink = f"{sd15_loras / 'ink.safetensors'}:0.8"
    base = manager.generate_image(PROMPT, **RUN)
    lora = manager.generate_image(PROMPT, lora_adapters=[ink], **RUN)
    again = manager.generate_image(PROMPT, lora_adapters=[ink], **RUN)
    after = manager.generate_image(PROMPT, **RUN)
    assert pixels(base.data) == pixels(cli_runs["base"].data)
    assert pixels(lora.data) == pixels(cli_runs["lora"].data)  # the same merge as sd-cli's
    assert pixels(again.data) == pixels(lora.data) and again.metadata["load_s"] == 0  # no reload
    assert pixels(after.data) == pixels(base.data) and after.metadata["load_s"] > 0  # reloaded


_RAW_BINDINGS = """
import json, sys
from stable_diffusion_cpp import StableDiffusion

checkpoint, folder = sys.argv[1:3]
model = StableDiffusion(model_path=checkpoint, lora_model_dir=folder, verbose=False)

def run(prompt):
    image = model.generate_image(prompt=prompt, width=64, height=64, sample_steps=1, seed=5, cfg_scale=7.0,
                                 progress_callback=lambda *a: None)[0]
    return image.convert("RGB").tobytes()

base = run("a lighthouse at dusk")
lora = run("a lighthouse at dusk<lora:ink.safetensors:0.8>")
after = run("a lighthouse at dusk")
print(json.dumps({"lora_differs": lora != base, "after_is_base": after == base}))
"""


@pytest.mark.timeout(600)
def test_why_python_mode_reloads_the_bindings_leave_a_trace_of_the_last_adapter(sd15_checkpoint, sd15_loras):
    """The engine fact behind the reload: on one loaded f16 model, sd.cpp 0.4.5 subtracts the last
    call's adapter again, and the weights do not come back exactly (a call without adapters is not the
    baseline). If this starts passing the other way, the reload may go."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _RAW_BINDINGS, str(sd15_checkpoint), str(sd15_loras)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"lora_differs": True, "after_is_base": False}


def test_a_missing_adapter_is_a_typed_error_before_either_engine_runs(
    sd_python_backend, sd15_checkpoint, sd_cli_binary
):
    cli = StableDiffusionCppVisionBackend(model=str(sd15_checkpoint), sd_cli_path=str(sd_cli_binary), mode="cli")
    for backend in (cli, sd_python_backend):
        events = []
        with pytest.raises(AdapterNotAvailableError) as info:
            VisionManager(backend=backend).generate_image(
                PROMPT, lora_adapters=["/nowhere/ink.safetensors"], on_progress=events.append, **RUN
            )
        assert info.value.adapter == "/nowhere/ink.safetensors" and "/nowhere/ink.safetensors" in str(info.value)
        assert events == []  # refused before the run started
