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
    "cli": ("repl", "repl", "Alias of `repl`."),
    "config": ("config_cmd", "config", "Show the effective settings and where each came from."),
    "demo": ("demo", "demo", "Offline smoke test: a tiny random-weight pipeline, text->image and image->image."),
    "i2i": ("generate", "i2i", "Edit an image (image_to_image; with --mask: inpainting)."),
    "i2v": ("generate", "i2v", "Animate an image into a video (image_to_video)."),
    "models": ("registry_cmds", "models", "List the models the capability registry knows."),
    "provider-adapters": ("catalog", "provider_adapters", "List the LoRA adapters a backend can use (for --lora)."),
    "provider-models": ("catalog", "provider_models", "List a provider's own models (remote or local cache)."),
    "repl": ("repl", "repl", "Interactive session: switch backends, set defaults, generate."),
    "serve": ("serve", "serve", "Serve a backend over HTTP: OpenAI's Images API, jobs, progress, cancel, keys."),
    "show-model": ("registry_cmds", "show_model", "Show a registry model's tasks, parameters and notes."),
    "t2i": ("generate", "t2i", "Generate an image from a prompt (text_to_image)."),
    "t2v": ("generate", "t2v", "Generate a video from a prompt (text_to_video)."),
    "tasks": ("registry_cmds", "tasks", "List the task names."),
    "upscale": ("upscale", "upscale", "Upscale an image (image_upscale; needs an upscaler configured)."),
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
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Generate and edit images (and videos) with any backend: OpenAI-compatible services,
    local Hugging Face Diffusers, or stable-diffusion.cpp."""
    ctx.ensure_object(dict)["debug"] = debug


def main() -> None:
    cli(prog_name="abstractvision")


__all__ = ["COMMANDS", "cli", "main"]
