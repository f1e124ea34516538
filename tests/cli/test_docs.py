"""The configuration reference lists every environment variable and every flag the CLI has."""

from __future__ import annotations

from pathlib import Path

import click

from abstractvision.cli import COMMANDS, cli
from abstractvision.config import env_var_names

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"


def test_every_environment_variable_is_documented():
    text = REFERENCE.read_text()
    missing = [var for names in env_var_names().values() for var in names if f"`{var}`" not in text]
    assert missing == []


def test_every_flag_of_every_command_is_documented():
    text = REFERENCE.read_text()
    missing = set()
    with click.Context(cli) as ctx:
        for name in (n for n in COMMANDS if COMMANDS[n][0] != "demo"):  # demo documents its own page
            command = cli.get_command(ctx, name)
            for param in command.params:
                if isinstance(param, click.Option):
                    missing.update(opt for opt in param.opts + param.secondary_opts if f"`{opt}" not in text)
    assert missing == set()
