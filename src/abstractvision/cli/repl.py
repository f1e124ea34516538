"""``abstractvision repl`` (alias ``cli``): an interactive session over one backend at a time.

Why a REPL: trying prompts and settings against a local model is slow if every command reloads
the weights. The session keeps one backend loaded, lets the user switch (the previous backend is
closed, so its memory is freed), remembers generation defaults, and survives errors: a failed
line prints one message and the prompt comes back.

Lines are split with :mod:`shlex`; ``/t2i`` and friends take the one-shot commands' options
(parsed by the same click commands, minus the backend flags). History and tab completion use the
standard library's ``readline`` when the platform has it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ._backend_words import parse_backend_words, secret_positions
from ._errors import report_failure
from ._session import BackendSession
from .generate import TASK_COMMANDS, make_task_command
from .upscale import make_upscale_command

HELP = """\
/backend openai <base_url> [api_key] [model_id]
/backend diffusers <model> [device] [dtype]
/backend sdcpp <model.gguf|model.safetensors> [sd_cli_path]
/backend sdcpp <diffusion_model.gguf> <vae.safetensors> <llm.gguf> [sd_cli_path]
/backend <plugin name> [model]      /backend alone shows the current one
/backend NAME ... name=value         any of the backend's settings (e.g. device=cpu timeout=60)
/cap-model <id|off>                 refuse tasks the registry says the model cannot do
/set KEY VALUE, /unset KEY, /defaults   generation defaults (width, steps, seed, output, ...)
/set lora ADAPTER[:SCALE] ...       LoRA adapters for every /t2i and /i2i (/set lora none: no adapters)
/t2i PROMPT [options]               (a line without a leading / is a /t2i prompt)
/i2i PROMPT --image PATH [--mask PATH] [--strength S] [options]
/t2v PROMPT [options], /i2v --image PATH [PROMPT] [options]
/upscale PATH [--scale S | --resolution WxH] [--prompt TEXT] [options]   (needs an upscaler setting)
/provider-models [--task T] [--json], /adapters [--json], /models [--task T], /show-model ID, /tasks
/preload, /unload, /config, /help, /exit
Options of /t2i etc.: see `/t2i --help`."""

#: Values that are API keys wherever they appear on a line (OpenAI-style ``sk-...`` and kin).
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}")

#: keys /set accepts that are not generation options
_EXTRA_DEFAULTS = ("output", "open_result", "quiet")


def history_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("abstractvision")) / "repl_history"


class Repl:
    """The session: ``handle(line)`` runs one line and returns ``False`` when the user quits."""

    def __init__(self, session: BackendSession | None = None, *, debug: bool = False, provider: str | None = None):
        self.session = session or BackendSession()
        self.debug = debug
        #: the backend's name for the prompt (the environment's until /backend switches)
        self.provider = provider or self.session.flags.get("provider")
        self.defaults: dict[str, Any] = {}
        self.task_commands = {name: make_task_command(name, with_backend=False) for name in TASK_COMMANDS}
        self.task_commands["upscale"] = make_upscale_command(with_backend=False)
        self.handlers: dict[str, Callable[[list[str]], bool | None]] = {
            "backend": self.do_backend,
            "cap-model": self.do_cap_model,
            "set": self.do_set,
            "unset": self.do_unset,
            "defaults": self.do_defaults,
            "provider-models": self.do_provider_models,
            "adapters": self.do_adapters,
            "models": self.registry_command("models"),
            "tasks": self.registry_command("tasks"),
            "show-model": self.registry_command("show_model"),
            "preload": self.do_preload,
            "unload": self.do_unload,
            "config": self.do_config,
            "help": self.do_help,
            "exit": self.do_exit,
            "quit": self.do_exit,
            **{name: self.task_runner(name) for name in self.task_commands},
        }

    # ---- the loop ------------------------------------------------------------------------------
    @property
    def prompt(self) -> str:
        return f"abstractvision ({self.provider or 'no backend'})> "

    def loop(self, read: Callable[[str], str] = input) -> None:
        click.echo("abstractvision REPL: /help lists the commands, /exit quits.")
        while True:
            try:
                line = read(self.prompt)
            except EOFError:
                click.echo()
                break
            except KeyboardInterrupt:
                click.echo()
                continue
            _redact_history(line)
            if not self.handle(line):
                break
        self.session.close()

    def handle(self, line: str) -> bool:
        """Run one line; print any failure as one line. ``False`` means: leave the REPL."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            if line.lstrip().startswith("/"):
                click.echo(f"error: {exc}", err=True)
                return True
            words = [line.strip()]  # a bare prompt such as: a cat's toy
        if not words:
            return True
        if not words[0].startswith("/"):
            words = ["/t2i", *words]
        name, args = words[0][1:], words[1:]
        handler = self.handlers.get(name)
        if handler is None:
            click.echo(f"error: unknown command /{name}; /help lists the commands", err=True)
            return True
        try:
            return handler(args) is not False
        except click.exceptions.Exit:
            pass
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
        except KeyboardInterrupt:
            click.echo("cancelled", err=True)
        except Exception as exc:
            click.echo(f"error: {report_failure(exc, self.debug)}", err=True)
        return True

    # ---- backend -------------------------------------------------------------------------------
    def do_backend(self, args: list[str]) -> None:
        if not args:
            state = "loaded" if self.session.loaded else "not loaded yet"
            click.echo(f"backend: {self.provider or 'none'} ({state})")
            return
        from ..backends import canonical_backend_name

        provider = canonical_backend_name(args[0])
        self.session.switch(provider, parse_backend_words(provider, args[1:]))
        self.provider = provider
        _ = self.session.backend  # built now, so a bad setting shows here and not at the first prompt
        click.echo(f"backend: {provider}")

    def do_cap_model(self, args: list[str]) -> None:
        if len(args) != 1:
            raise click.UsageError("/cap-model takes a model id or off")
        if args[0] == "off":
            self.session.cap_model = None
            click.echo("registry gating off")
            return
        from ..model_capabilities import VisionModelCapabilitiesRegistry

        self.session.cap_model = VisionModelCapabilitiesRegistry().get(args[0]).id
        click.echo(f"requests are checked against {self.session.cap_model}")

    def do_preload(self, args: list[str]) -> None:
        self.session.manager().preload()
        click.echo("preloaded")

    def do_unload(self, args: list[str]) -> None:
        if self.session.loaded:
            self.session.backend.unload()
        click.echo("unloaded")

    # ---- defaults ------------------------------------------------------------------------------
    def _option(self, key: str) -> click.Option:
        name = key.replace("-", "_")
        if name == "open":
            name = "open_result"
        for command in self.task_commands.values():
            for param in command.params:
                if param.name == name and isinstance(param, click.Option) and name != "param":
                    return param
        keys = sorted({p.name for c in self.task_commands.values() for p in c.params if isinstance(p, click.Option)})
        keys = [k for k in keys if k not in ("param", "as_json", "cap_model", "image", "mask")]
        raise click.UsageError(f"unknown key {key!r}; keys: {', '.join(keys)}")

    def do_set(self, args: list[str]) -> None:
        if len(args) < 2:
            raise click.UsageError("/set takes KEY VALUE")
        option = self._option(args[0])
        if option.name == "lora" and args[1:] == ["none"]:
            self.defaults.pop("lora", None)
            click.echo("lora = none")
            return
        raw = " ".join(args[1:])
        with click.Context(click.Command("/set")) as ctx:
            if option.multiple:  # one default per word, read as the option reads them (--lora a --lora b)
                value = option.process_value(ctx, args[1:])
            elif option.is_flag:
                value = raw.lower() in ("1", "true", "on")
            else:
                value = option.type_cast_value(ctx, raw)
        self.defaults[option.name] = value
        click.echo(f"{option.name} = {_shown(option.name, value)}")

    def do_unset(self, args: list[str]) -> None:
        if len(args) != 1:
            raise click.UsageError("/unset takes KEY")
        self.defaults.pop(self._option(args[0]).name, None)

    def do_defaults(self, args: list[str]) -> None:
        if not self.defaults:
            click.echo("no defaults set: the backend decides")
        for key, value in sorted(self.defaults.items()):
            click.echo(f"{key} = {_shown(key, value)}")

    # ---- commands shared with the one-shot CLI -------------------------------------------------
    def task_runner(self, name: str) -> Callable[[list[str]], None]:
        def run(args: list[str]) -> None:
            from .generate import run_task
            from .upscale import run_upscale

            command = self.task_commands[name]
            with command.make_context(f"/{name}", list(args)) as ctx:
                values = dict(ctx.params)
            for key, value in self.defaults.items():
                if key in values and values[key] in (None, False, ()):
                    values[key] = value
            if name == "upscale":
                run_upscale(self.session, values)
            else:
                run_task(self.session, name, values)

        return run

    def registry_command(self, attr: str) -> Callable[[list[str]], None]:
        def run(args: list[str]) -> None:
            from . import registry_cmds

            command = getattr(registry_cmds, attr)
            command.main(args, prog_name=f"/{command.name}", standalone_mode=False, obj={"debug": self.debug})

        return run

    def do_provider_models(self, args: list[str]) -> None:
        from .catalog import list_provider_models

        @click.command()
        @click.option("--task")
        @click.option("--json", "as_json", is_flag=True)
        def parse(task: str | None, as_json: bool) -> None:
            list_provider_models(self.session, task, as_json)

        parse.main(args, prog_name="/provider-models", standalone_mode=False)

    def do_adapters(self, args: list[str]) -> None:
        from .catalog import list_provider_adapters

        @click.command()
        @click.option("--json", "as_json", is_flag=True)
        def parse(as_json: bool) -> None:
            list_provider_adapters(self.session, as_json)

        parse.main(args, prog_name="/adapters", standalone_mode=False)

    def do_config(self, args: list[str]) -> None:
        from .config_cmd import show_config

        show_config(self.session, "--json" in args)

    def do_help(self, args: list[str]) -> None:
        click.echo(HELP)

    def do_exit(self, args: list[str]) -> bool:
        return False

    # ---- completion ----------------------------------------------------------------------------
    def complete(self, text: str, state: int) -> str | None:
        """readline completer: /commands first, then backend names and /set keys."""
        import readline

        words = readline.get_line_buffer()[: readline.get_begidx()].split()
        if not words:
            candidates = [f"/{name}" for name in self.handlers]
        elif words[0] == "/backend" and len(words) == 1:
            from ..backends import KNOWN_BACKENDS

            candidates = list(KNOWN_BACKENDS)
        elif words[0] in ("/set", "/unset") and len(words) == 1:
            candidates = sorted({p.name for c in self.task_commands.values() for p in c.params if p.name})
        else:
            return None
        matches = [f"{c} " for c in sorted(candidates) if c.startswith(text)]  # Python sets no append char
        return matches[state] if state < len(matches) else None


def _shown(key: str, value: Any) -> Any:
    """A default as ``/defaults`` shows it: adapters as the words that set them."""
    from ._options import lora_words

    return lora_words(value) if key == "lora" else value


def redact_line(line: str) -> str:
    """``line`` as the history file may keep it: API keys and URL passwords masked.

    Works on lines that do not parse too (an unbalanced quote is a typo, not a reason to keep a
    key): those are split on whitespace. Masked: the value of any ``name=value`` or ``--name value``
    whose name looks like a credential, ``sk-...``-style tokens, the password of a
    ``user:password@`` URL, and the api_key slot of ``/backend openai <base_url> <api_key>``.
    """
    from ..backends import canonical_backend_name
    from ..errors import AbstractVisionError
    from ..redaction import MASK, is_secret_name, scrub, url_secrets

    try:
        words = shlex.split(line)
    except ValueError:
        words = [word.strip("\"'") for word in line.split()]
    secrets: list[str] = []
    for index, word in enumerate(words):
        name, equals, value = word.partition("=")
        name = name.lstrip("-").replace("-", "_")
        if equals and is_secret_name(name):
            secrets.append(value)
        elif word.startswith("-") and is_secret_name(name) and index + 1 < len(words):
            secrets.append(words[index + 1])
        secrets.extend(url_secrets(word))
    if len(words) >= 4 and words[0] == "/backend":
        try:
            slots = secret_positions(canonical_backend_name(words[1]))
        except AbstractVisionError:
            slots = set()
        secrets.extend(words[2 + slot] for slot in slots if 2 + slot < len(words))
    return _KEY_LIKE.sub(MASK, scrub(line, sorted(secrets, key=len, reverse=True)))


def _redact_history(line: str) -> None:
    """Replace the history entry just added for ``line`` with :func:`redact_line`'s version."""
    redacted = redact_line(line)
    if redacted == line:
        return
    try:
        import readline
    except ImportError:
        return
    length = readline.get_current_history_length()
    if length and readline.get_history_item(length) == line:
        readline.replace_history_item(length - 1, redacted)


def _enable_readline(repl: Repl, history: Path) -> Callable[[], None]:
    """History and tab completion; returns the function that saves the history."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return lambda: None
    history.parent.mkdir(parents=True, exist_ok=True)
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)
    readline.set_completer(repl.complete)
    readline.set_completer_delims(" \t\n")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    return lambda: readline.write_history_file(history)


@click.command()
@click.pass_context
def repl(ctx: click.Context) -> None:
    """Interactive session: /backend to choose an engine, /set defaults, then type prompts.

    A backend from the environment (ABSTRACTVISION_PROVIDER, ...) is used until /backend switches.
    """
    from ..config import load_settings
    from ._errors import debug_enabled

    shell = Repl(BackendSession(), debug=debug_enabled(ctx), provider=load_settings().provider)
    save_history = _enable_readline(shell, history_path())
    try:
        shell.loop()
    finally:
        save_history()


__all__ = ["Repl", "history_path", "redact_line", "repl"]
