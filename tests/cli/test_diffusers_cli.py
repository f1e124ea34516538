"""The CLI on the tiny random-weight Diffusers pipeline."""

from __future__ import annotations

import json

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
