"""``abstractvision upscale`` and the REPL's ``/upscale``: through the fake sd-cli, and on the tiny
Diffusers upscale pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from abstractvision.cli._session import BackendSession
from abstractvision.cli.repl import Repl
from fixtures.images import make_png


def size_of(path) -> tuple[int, int]:
    from PIL import Image

    return Image.open(path).size


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "holiday photo.png"
    path.write_bytes(make_png(16, 12))
    return path


@pytest.fixture
def upscaler_file(tmp_path) -> Path:
    path = tmp_path / "models" / "RealESRGAN_x4plus.pth"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"not real weights")
    return path


@pytest.fixture
def sdcpp_flags(fake_sd_cli, upscaler_file) -> list[str]:
    return ["--provider", "sdcpp", "--sd-cli", str(fake_sd_cli.path), "--sd-mode", "cli"] + [
        "--upscale-model",
        str(upscaler_file),
    ]


def test_upscale_by_a_scale_through_sd_cli(invoke, fake_sd_cli, sdcpp_flags, source, tmp_path):
    out = tmp_path / "big.png"
    result = invoke("upscale", str(source), *sdcpp_flags, "--upscale-repeats", "2", "--scale", "3", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and size_of(out) == (48, 36)
    argv = fake_sd_cli.last_argv()
    assert argv[:2] == ["-M", "upscale"] and argv[argv.index("--upscale-repeats") + 1] == "2"


def test_upscale_to_a_resolution_as_json(invoke, sdcpp_flags, source, tmp_path):
    result = invoke("upscale", str(source), *sdcpp_flags, "--resolution", "50x40", "-o", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    [asset] = document["assets"]
    assert document["task"] == "image_upscale" and size_of(asset["path"]) == (50, 40)
    assert Path(asset["path"]).name.startswith("upscale-")
    assert asset["metadata"]["engine_scale"] == 4 and asset["metadata"]["resolution"] == [50, 40]


def test_without_o_the_result_is_named_after_the_input(invoke, sdcpp_flags, source):
    result = invoke("upscale", str(source), *sdcpp_flags)
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert "_holiday-photo-upscaled" in path.name and size_of(path) == (64, 48)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--resolution", "big"], "is not WIDTHxHEIGHT"),
        (["--scale", "0.5"], "0.5 is not in the range"),
        (["--scale", "40"], "40.0 is not in the range"),
    ],
)
def test_a_malformed_value_is_a_usage_error(invoke, sdcpp_flags, source, args, words):
    result = invoke("upscale", str(source), *sdcpp_flags, *args)
    assert result.exit_code == 2 and words in result.stderr


def test_no_upscaler_configured_says_which_setting_to_give(invoke, fake_sd_cli, source, tmp_path):
    model = tmp_path / "sd15.safetensors"
    model.write_bytes(b"stand-in")
    flags = ["--provider", "sdcpp", "--sd-cli", str(fake_sd_cli.path), "--model", str(model)]
    result = invoke("upscale", str(source), *flags)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "--upscale-model" in result.stderr and fake_sd_cli.runs() == []


def test_scale_and_resolution_together_are_refused(invoke, sdcpp_flags, source):
    result = invoke("upscale", str(source), *sdcpp_flags, "--scale", "2", "--resolution", "64x48")
    assert result.exit_code == 1 and "not both" in result.stderr


def test_repl_upscale_with_defaults(capsys, fake_sd_cli, upscaler_file, source, tmp_path):
    shell = Repl(BackendSession())
    try:
        assert shell.handle(f"/backend sdcpp upscale_model={upscaler_file} sd_cli_path={fake_sd_cli.path} mode=cli")
        assert shell.handle("/set scale 2")
        assert shell.handle(f"/set output {tmp_path}/out/")
        capsys.readouterr()
        assert shell.handle(f"/upscale '{source}'")
        [path] = capsys.readouterr().out.split()
        assert size_of(path) == (32, 24)
        assert shell.handle(f"/upscale '{source}' --scale 3 --json")
        assert size_of(json.loads(capsys.readouterr().out)["assets"][0]["path"]) == (48, 36)
        assert shell.handle("/upscale")  # a usage error: one line, the session goes on
        assert "Missing argument 'IMAGE'" in capsys.readouterr().err
    finally:
        shell.session.close()


@pytest.mark.slow
def test_upscale_on_the_tiny_diffusers_upscaler(invoke, tiny_upscale_pipeline, source, tmp_path, block_network):
    args = ["--provider", "diffusers", "--upscaler", str(tiny_upscale_pipeline), "--device", "cpu"]
    args += ["--steps", "2", "--seed", "4", "--prompt", "a beach", "--scale", "2", "-o", str(tmp_path / "u.png")]
    result = invoke("upscale", str(source), *args, "--json")
    assert result.exit_code == 0, result.output
    [asset] = json.loads(result.stdout)["assets"]
    assert size_of(asset["path"]) == (32, 24)
    meta = asset["metadata"]
    assert (meta["seed"], meta["steps"], meta["prompt"]) == (4, 2, "a beach") and block_network == []
