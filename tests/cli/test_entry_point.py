"""``python -m abstractvision`` as a subprocess: startup weight, exit codes, plugin backends."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

from cli_backends import FAILING_SEED

HEAVY = ("torch", "diffusers", "numpy", "PIL", "httpx", "rich", "stable_diffusion_cpp")


def test_help_lists_every_command_and_imports_nothing_heavy(cli_env):
    import subprocess

    code = (
        "import sys\nfrom abstractvision.cli import cli, COMMANDS\n"
        "try:\n    cli(['--help'], prog_name='abstractvision')\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "print('CMDMODULES', sorted(m for m in sys.modules if m.startswith('abstractvision.cli.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env).stdout
    assert "HEAVY []" in out and "CMDMODULES []" in out
    commands = ("t2i", "i2i", "t2v", "i2v", "models", "tasks", "show-model", "provider-models", "provider-adapters")
    for name in (*commands, "config", "repl"):
        assert f"  {name} " in out


def test_one_shot_t2i_through_an_entry_point_backend(run_cli, tmp_path):
    out = tmp_path / "img.png"
    result = run_cli("t2i", "a lighthouse", "--provider", "echo", "--steps", "2", "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    [asset] = json.loads(result.stdout)["assets"]
    assert asset["path"] == str(out) and out.exists() and asset["metadata"]["request"]["steps"] == 2


def test_usage_error_exits_2(run_cli):
    result = run_cli("t2i", "cat", "--steps", "many")
    assert result.returncode == 2 and "Invalid value for '--steps'" in result.stderr


def test_generation_error_exits_1_with_one_line_and_no_traceback(run_cli):
    result = run_cli("t2i", "cat", "--provider", "echo", "--seed", str(FAILING_SEED))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: simulated provider failure for seed {FAILING_SEED}"]
    assert "Traceback" not in result.stderr


def test_debug_prints_the_traceback(run_cli):
    result = run_cli("--debug", "t2i", "cat", "--provider", "echo", "--seed", str(FAILING_SEED))
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr
    assert "ProviderError" in result.stderr


def test_open_hands_the_file_to_the_system_viewer(run_cli, cli_env, tmp_path):
    bin_dir, record = tmp_path / "bin", tmp_path / "opened.txt"
    bin_dir.mkdir()
    viewer = bin_dir / "xdg-open"  # what click.launch runs on Linux
    viewer.write_text(f'#!/bin/sh\necho "$1" >> "{record}"\n')
    viewer.chmod(viewer.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "o.png"
    env = {"PATH": f"{bin_dir}{os.pathsep}{cli_env['PATH']}"}
    result = run_cli("t2i", "cat", "--provider", "echo", "-o", str(out), "--open", env=env)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(record.read_text().strip()) == out
