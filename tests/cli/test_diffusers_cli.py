"""The CLI on the tiny random-weight Diffusers pipeline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fixtures.images import make_png


@pytest.mark.slow
def test_diffusers_t2i_on_the_tiny_pipeline(invoke, tiny_diffusers_pipeline, tmp_path, block_network):
    args = ["--provider", "diffusers", "--model", str(tiny_diffusers_pipeline), "--device", "cpu"]
    args += ["--steps", "2", "--width", "64", "--height", "64", "--seed", "3", "-o", str(tmp_path / "d.png"), "--json"]
    result = invoke("t2i", "a lighthouse", *args)
    assert result.exit_code == 0, result.output
    [asset] = json.loads(result.stdout)["assets"]
    assert (asset["metadata"]["seed"], asset["metadata"]["steps"]) == (3, 2)
    from PIL import Image

    assert Image.open(asset["path"]).size == (64, 64)
    again = invoke("t2i", "a lighthouse", *args[:-3], "-o", str(tmp_path / "d2.png"))
    assert (tmp_path / "d2.png").read_bytes() != b"" and block_network == []
    from abstractvision.media import decode_image

    first = decode_image((tmp_path / "d.png").read_bytes()).tobytes()
    assert again.exit_code == 0 and decode_image((tmp_path / "d2.png").read_bytes()).tobytes() == first


@pytest.mark.slow
def test_diffusers_i2i_with_mask(invoke, tiny_diffusers_pipeline, tmp_path):
    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    image.write_bytes(make_png(64, 64))
    mask.write_bytes(make_png(64, 64, mode="L"))
    args = ["--provider", "diffusers", "--model", str(tiny_diffusers_pipeline), "--device", "cpu", "--steps", "2"]
    args += ["--image", str(image), "--mask", str(mask), "--strength", "0.5", "-o", str(tmp_path / "i.png"), "-q"]
    result = invoke("i2i", "paint it", *args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "i.png").exists()


@pytest.mark.slow
def test_diffusers_uncached_model_fails_without_downloading(invoke, tmp_path, block_network):
    pytest.importorskip("diffusers")
    args = ["--provider", "diffusers", "--model", "someone/not-cached-model", "--cache-dir", str(tmp_path / "hf")]
    result = invoke("t2i", "cat", *args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "download" in result.stderr.lower() and block_network == []


def test_diffusers_catalog_of_an_empty_cache(invoke, tmp_path):
    pytest.importorskip("diffusers")
    result = invoke("provider-models", "--provider", "diffusers", "--cache-dir", str(tmp_path / "hf"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


#: Runs the CLI as on the base install: the [diffusers] stack cannot be imported (the packages are on
#: disk in the test environment, so a meta path finder answers for them as an absent package would).
BASE_INSTALL = """
import sys
BLOCKED = {"huggingface_hub", "diffusers", "transformers", "torch", "accelerate", "safetensors"}
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
from abstractvision.cli import cli
cli(sys.argv[1:], prog_name="abstractvision")
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "args,package",
    [
        (["t2i", "x", "--provider", "diffusers", "--model", "runwayml/stable-diffusion-v1-5"], "huggingface_hub"),
        (["provider-models", "--provider", "diffusers"], "huggingface_hub"),
        (["t2i", "x", "--provider", "diffusers", "--model", "{tmp}"], "diffusers"),
        (["demo", "-o", "{tmp}"], "diffusers"),
    ],
)
def test_a_missing_diffusers_extra_names_the_pip_line(cli_env, tmp_path, args, package):
    env = {**cli_env, "HF_HUB_CACHE": str(tmp_path / "hf")}
    argv = [sys.executable, "-c", BASE_INSTALL, *(arg.format(tmp=tmp_path) for arg in args)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=100)
    assert result.returncode == 1, result.stderr
    assert f'needs {package}; install it with: pip install "abstractvision[diffusers]"' in result.stderr
    assert "Traceback" not in result.stderr and "ModuleNotFoundError" not in result.stderr


@pytest.mark.timeout(120)
def test_the_catalog_of_an_explicit_cache_dir_needs_no_extra(cli_env, tmp_path):
    argv = [sys.executable, "-c", BASE_INSTALL, "provider-models", "--provider", "diffusers", "--json"]
    result = subprocess.run([*argv, "--cache-dir", str(tmp_path)], capture_output=True, text=True, env=cli_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
