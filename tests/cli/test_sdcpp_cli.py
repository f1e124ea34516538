"""The CLI on stable-diffusion.cpp through a fake ``sd-cli`` (argv, failures, catalog, REPL)."""

from __future__ import annotations

import json
import os
import sys

from test_repl import PROMPT, Terminal


def test_sdcpp_t2i_through_the_fake_sd_cli(invoke, fake_sd_cli, model_file, tmp_path):
    args = ["--provider", "sdcpp", "--sd-cli", str(fake_sd_cli.path), "--sd-mode", "cli", "--model", str(model_file)]
    args += ["--steps", "3", "--seed", "11", "--width", "64", "--height", "64", "-o", str(tmp_path / "s.png"), "--json"]
    result = invoke("t2i", "a lighthouse", *args)
    assert result.exit_code == 0, result.output
    argv = fake_sd_cli.last_argv()
    assert "a lighthouse" in argv and str(model_file) in argv
    assert argv[argv.index("--steps") + 1] == "3" and argv[argv.index("-W") + 1] == "64"
    assert json.loads(result.stdout)["assets"][0]["metadata"]["seed"] == 11


def test_sdcpp_failure_is_one_line_exit_1(invoke, fake_sd_cli, model_file):
    fake_sd_cli.behave("fail")
    args = ["--provider", "sdcpp", "--sd-cli", str(fake_sd_cli.path), "--sd-mode", "cli", "--model", str(model_file)]
    result = invoke("t2i", "cat", *args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 1
    assert "3" in result.stderr  # the exit code sd-cli failed with


def test_sdcpp_missing_model_file_is_named(invoke, fake_sd_cli, tmp_path):
    args = ["--provider", "sdcpp", "--sd-cli", str(fake_sd_cli.path), "--model", str(tmp_path / "none.gguf")]
    result = invoke("t2i", "cat", *args)
    assert result.exit_code == 1 and "none.gguf" in result.stderr


def test_sdcpp_catalog_lists_model_files(invoke, fake_sd_cli, model_file):
    args = ["--provider", "sdcpp", "--sd-cli", str(fake_sd_cli.path), "--models-dir", str(model_file.parent)]
    result = invoke("provider-models", *args, "--json")
    assert result.exit_code == 0, result.output
    assert any(model_file.name in m["id"] for m in json.loads(result.stdout))


def test_sdcpp_subprocess_and_repl(run_cli, cli_env, fake_sd_cli, model_file, tmp_path):
    env = {k: v for k, v in os.environ.items() if k.startswith("FAKE_SD_CLI")}
    result = run_cli(
        "t2i",
        "cat",
        "--provider",
        "sdcpp",
        "--sd-cli",
        str(fake_sd_cli.path),
        "--model",
        str(model_file),
        "--sd-mode",
        "cli",
        "-o",
        str(tmp_path / "p.png"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    term = Terminal([sys.executable, "-m", "abstractvision", "repl"], {**cli_env, **env})
    term.expect(PROMPT)
    term.send(f"/backend sdcpp {model_file} {fake_sd_cli.path}\n")
    assert "backend: sdcpp" in term.expect(PROMPT)
    term.send(f"/t2i cat --steps 2 -o {tmp_path}/r.png\n")
    assert f"{tmp_path}/r.png" in term.expect(PROMPT)
    term.send("/backend echo\n")
    assert "backend: echo" in term.expect(PROMPT)
    term.send("/exit\n")
    assert term.wait() == 0
    assert len(fake_sd_cli.runs()) == 2


def test_sdcpp_catalog_with_a_configured_model(invoke, fake_sd_cli, model_file):
    other = model_file.parent / "other.gguf"
    other.write_bytes(b"gguf stand-in")
    args = ["--provider", "sdcpp", "--sd-cli", str(fake_sd_cli.path), "--model", str(model_file)]
    result = invoke("provider-models", *args, "--models-dir", str(model_file.parent), "--json")
    assert result.exit_code == 0, result.output
    ids = " ".join(m["id"] for m in json.loads(result.stdout))
    assert model_file.name in ids and "other.gguf" in ids


def test_sdcpp_i2i_passes_image_mask_and_strength(invoke, fake_sd_cli, model_file, tmp_path):
    from fixtures.images import make_png

    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    image.write_bytes(make_png(64, 64))
    mask.write_bytes(make_png(64, 64, mode="L"))
    args = ["--provider", "sdcpp", "--sd-cli", str(fake_sd_cli.path), "--sd-mode", "cli", "--model", str(model_file)]
    args += ["--image", str(image), "--mask", str(mask), "--strength", "0.3", "-o", str(tmp_path / "e.png")]
    result = invoke("i2i", "paint it", *args)
    assert result.exit_code == 0, result.output
    argv = fake_sd_cli.last_argv()
    assert "-i" in argv or "--init-img" in argv
    assert "--mask" in argv and argv[argv.index("--strength") + 1] == "0.3"
    assert (tmp_path / "e.png").exists()
