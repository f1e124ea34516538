"""``abstractvision demo`` end to end: real tiny pipeline, real backend, no network."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from abstractvision.cli import cli
from abstractvision.media import read_png_metadata, sniff_mime_type

pytestmark = pytest.mark.slow


def test_demo_builds_once_runs_offline_and_writes_both_images(tmp_path, monkeypatch, block_network):
    pytest.importorskip("diffusers")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["demo", "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name, task in (("demo_text_to_image.png", "text_to_image"), ("demo_image_to_image.png", "image_to_image")):
        data = (out / name).read_bytes()
        assert sniff_mime_type(data) == "image/png"
        assert read_png_metadata(data)["task"] == task
    assert "random" in result.output and "noise" in result.output
    assert "--model runwayml/stable-diffusion-v1-5" in result.output
    assert (tmp_path / "cache" / "abstractvision" / "demo-pipeline" / "model_index.json").is_file()
    built = (tmp_path / "cache" / "abstractvision" / "demo-pipeline" / "unet").stat().st_mtime_ns
    again = CliRunner().invoke(cli, ["demo", "-o", str(out)])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "cache" / "abstractvision" / "demo-pipeline" / "unet").stat().st_mtime_ns == built
    assert block_network == []


def test_demo_is_listed_without_importing_it():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and "demo" in result.output
