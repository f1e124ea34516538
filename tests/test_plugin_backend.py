"""A plugin backend installed through an entry point gets what built-ins get.

``tests/plugin_package/toyvision`` is written as a third-party package would be; here it is
installed the way pip leaves a package (a ``.dist-info`` folder whose ``entry_points.txt`` names it
in ``abstractvision.backends``, on the path), and used from separate processes, as a user would:
its declared settings arrive from the environment, from ``--model`` and its own flags, from the
REPL's ``/backend toy [model] name=value``, and it passes the shipped contract suite in its own
pytest run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).parent / "plugin_package"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("site")
    dist = site / "toyvision-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyvision\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[abstractvision.backends]\ntoy = toyvision:ToyBackend\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOYVISION_", "ABSTRACTVISION_"))}
    env["PYTHONPATH"] = os.pathsep.join(map(str, (ROOT / "src", PACKAGE, site)))
    env["XDG_DATA_HOME"] = str(site / "xdg-data")
    env["ABSTRACTVISION_STORE_DIR"] = str(site / "store")
    return env


def run(args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


def metadata_of(path: Path) -> dict:
    from abstractvision.media import read_png_metadata

    return read_png_metadata(path.read_bytes())


def test_env_and_model_flag_reach_the_plugin(plugin_env, tmp_path):
    env = {**plugin_env, "TOYVISION_COLOR": "blue"}
    t2i = ["-m", "abstractvision", "t2i", "a", "cat", "--provider", "toy", "-q"]
    done = run([*t2i, "--model", "toy-9", "--seed", "5", "-o", "out.png"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    meta = metadata_of(tmp_path / "out.png")
    assert (meta["model"], meta["color"], meta["seed"]) == ("toy-9", "blue", 5)
    flag = run([*t2i, "--color", "green", "-o", "f.png"], env, tmp_path)
    assert flag.returncode == 0, flag.stderr
    assert metadata_of(tmp_path / "f.png")["color"] == "green"  # the flag beats the environment
    assert metadata_of(tmp_path / "f.png")["model"] == "toy-1"  # the declared default


def test_config_lists_the_plugins_settings_with_their_sources_and_hides_its_key(plugin_env, tmp_path):
    env = {**plugin_env, "TOYVISION_COLOR": "blue", "TOYVISION_API_KEY": "sk-toy-hidden"}
    done = run(["-m", "abstractvision", "config", "--provider", "toy", "--model", "toy-3", "--json"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["toy.model_id"] == {"value": "toy-3", "source": "flag"}
    assert shown["toy.color"] == {"value": "blue", "source": "env TOYVISION_COLOR"}
    assert shown["toy.api_key"]["value"] == "***" and "sk-toy-hidden" not in done.stdout


def test_the_repl_switches_to_the_plugin_with_its_model_and_settings(plugin_env, tmp_path):
    lines = "/backend toy toy-7 color=green\n/t2i a cat --seed 2 -o repl.png -q\n/exit\n"
    done = run(["-m", "abstractvision", "repl"], plugin_env, tmp_path, stdin=lines)
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr.lower(), done.stderr
    meta = metadata_of(tmp_path / "repl.png")
    assert (meta["model"], meta["color"], meta["seed"]) == ("toy-7", "green", 2)


def test_the_plugin_passes_the_shipped_contract_suite_in_its_own_test_run(plugin_env, tmp_path):
    shutil.copy(PACKAGE / "contract_toyvision.py", tmp_path / "test_contract_toyvision.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_contract_toyvision.py"], plugin_env, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
