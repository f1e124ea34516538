"""Shared test setup.

Every test runs in an environment isolated from the developer's own settings (``isolated_environment``
below). Fixture modules live in ``tests/fixtures/`` (one per engine: loopback OpenAI server, tiny
Diffusers pipeline, stable-diffusion.cpp build, ...) and are all registered here as plugins, so any
test can ask for them by name; ``pytester`` runs the contract suite on deliberately broken backends.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"] + sorted(
    f"fixtures.{path.stem}" for path in (Path(__file__).parent / "fixtures").glob("*.py") if path.stem != "__init__"
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No test reads the developer's own settings, keys or asset store."""
    for name in list(os.environ):
        if name.startswith(("ABSTRACTVISION_", "ABSTRACTCORE_VISION_", "OPENAI_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ABSTRACTVISION_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # the CLI's outputs folder, REPL history
