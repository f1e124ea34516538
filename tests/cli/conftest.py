"""CLI test setup: the in-test backends registered by name, and a subprocess runner.

In-process tests (click's ``CliRunner``) add the backends with ``register_backend``; subprocess tests
get them the way a third-party package would, through an ``abstractvision.backends`` entry point
in a ``.dist-info`` folder on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from abstractvision.backends import register_backend, unregister_backend

ROOT = Path(__file__).resolve().parents[2]
TEST_BACKENDS = {
    "echo": "cli_backends:EchoBackend",
    "echo2": "cli_backends:OtherEchoBackend",
    "echo-breaks-folder": "cli_backends:FolderBreakingBackend",
}


@pytest.fixture
def echo_backends():
    """``--provider echo`` / ``echo2`` in this process."""
    for name, target in TEST_BACKENDS.items():
        register_backend(name, target, description="CLI test backend")
    yield
    for name in TEST_BACKENDS:
        unregister_backend(name)


@pytest.fixture
def runner(echo_backends) -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run the real click group in-process: ``invoke("t2i", "cat", ...)``."""
    from abstractvision.cli import cli

    def run(*args: str, **kwargs):
        return runner.invoke(cli, list(args), prog_name="abstractvision", **kwargs)

    return run


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory) -> Path:
    """A folder holding an installed-looking distribution whose entry points name the test backends."""
    folder = tmp_path_factory.mktemp("plugin")
    dist = folder / "abstractvision_cli_tests-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: abstractvision-cli-tests\nVersion: 0\n")
    lines = [f"{name} = {target}" for name, target in TEST_BACKENDS.items()]
    (dist / "entry_points.txt").write_text("[abstractvision.backends]\n" + "\n".join(lines) + "\n")
    return folder


@pytest.fixture
def cli_env(plugin_dir, tmp_path) -> dict[str, str]:
    """Environment of a ``python -m abstractvision`` subprocess: this checkout, the test backends,
    a private history/data folder (and the store folder set by ``isolated_environment``)."""
    env = dict(os.environ)
    paths = [ROOT / "src", Path(__file__).parent, plugin_dir]
    env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def run_cli(cli_env):
    """Run ``python -m abstractvision ARGS`` and return the completed process (text mode)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "abstractvision", *args],
            capture_output=True,
            text=True,
            env={**cli_env, **(env or {})},
            cwd=ROOT,
            timeout=timeout,
        )

    return run
