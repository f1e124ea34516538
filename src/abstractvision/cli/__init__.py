"""The ``abstractvision`` command.

Startup matters (``abstractvision --help`` under 100 ms), so the group only knows command names
and where they live; each command module, and rich, the library and the engines behind it, are
imported when that command runs. Commands use only the public API and turn
:class:`~abstractvision.errors.AbstractVisionError` into a one-line message and exit code 1.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__

#: command name -> (module under abstractvision.cli, attribute, one-line help shown by --help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("demo", "demo", "Offline smoke test: a tiny random-weight pipeline, text->image and image->image."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr, _ = COMMANDS[name]
            return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table, so --help imports no command module.
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        rows += [
            (name, cmd.get_short_help_str()) for name, cmd in sorted(self.commands.items()) if name not in COMMANDS
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="abstractvision")
def cli() -> None:
    """Generate and edit images (and videos) with any backend: OpenAI-compatible services,
    local Hugging Face Diffusers, or stable-diffusion.cpp."""


def main() -> None:
    cli(prog_name="abstractvision")


__all__ = ["COMMANDS", "cli", "main"]
