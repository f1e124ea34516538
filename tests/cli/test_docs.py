"""The configuration reference lists every environment variable and every flag the CLI has."""

from __future__ import annotations

from pathlib import Path

import click

from abstractvision.cli import COMMANDS, cli

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"


def test_the_settings_tables_are_generated_from_the_declarations():
    """docs/reference/configuration.md's tables are exactly what scripts/config_reference.py renders."""
    import importlib.util

    path = REFERENCE.parents[2] / "scripts" / "config_reference.py"
    spec = importlib.util.spec_from_file_location("config_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.current() == module.render(), "run: python scripts/config_reference.py"


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


def _documented_commands(page: Path) -> list[list[str]]:
    """Every ``abstractvision ...`` line in the page's shell blocks (after any ``VAR=value``),
    continuations joined, split like a shell."""
    import re
    import shlex

    blocks = page.read_text().split("```")[1::2]  # the fenced blocks
    text = "\n".join(block for block in blocks if block.startswith("bash")).replace("\\\n", " ")
    lines = [
        re.sub(r"^([A-Z_][A-Z0-9_]*=(\"[^\"]*\"|\S*) )+", "", line.split("  #")[0].strip())
        for line in text.splitlines()
    ]
    return [shlex.split(line)[1:] for line in lines if line.startswith("abstractvision ")]


def _unknown_options(commands: list[list[str]]) -> list[tuple[str, list[str]]]:
    """(command line, its options the real command does not have) for each documented command."""
    unknown = []
    with click.Context(cli) as ctx:
        for args in commands:
            command = cli.get_command(ctx, args[0])
            assert command is not None, args
            known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
            wrong = [a for a in args[1:] if a.startswith("-") and " " not in a and a not in known | {"-h", "--help"}]
            if wrong:
                unknown.append((" ".join(args), wrong))
    return unknown


def test_getting_started_uses_only_real_commands_and_options():
    commands = _documented_commands(REFERENCE.parents[1] / "getting-started.md")
    assert len(commands) > 15
    assert _unknown_options(commands) == []


def test_the_server_page_uses_only_real_commands_and_options():
    commands = _documented_commands(REFERENCE.parents[1] / "server.md")
    assert sum(args[0] == "serve" for args in commands) >= 5
    assert _unknown_options(commands) == []


def test_the_deploy_page_uses_only_real_commands_and_options():
    commands = _documented_commands(REFERENCE.parents[1] / "deploy.md")
    assert sum(args[:2] == ["serve", "--ray"] for args in commands) >= 2
    assert _unknown_options(commands) == []
