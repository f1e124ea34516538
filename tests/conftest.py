"""Shared test setup.

Fixture modules live in ``tests/fixtures/`` (one per engine: loopback OpenAI server, tiny Diffusers
pipeline, stable-diffusion.cpp build, ...) and are all registered here as plugins, so any test can
ask for them by name.
"""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"] + sorted(
    f"fixtures.{path.stem}" for path in (Path(__file__).parent / "fixtures").glob("*.py") if path.stem != "__init__"
)
