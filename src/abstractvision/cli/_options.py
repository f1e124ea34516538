"""Options shared by several commands, and how backend flags become settings.

The backend flags are not written here: each backend's config declares its settings
(:func:`abstractvision.config.setting`: flag, help, environment variables), and :func:`backend_options`
turns every declared flag of every known backend (plugins included) into one click option. A given
flag becomes an explicit value of the chosen backend's setting, so the precedence (*flag >
environment > default*) and ``config``'s "where did this come from" are the library's own.
Generation options default to ``None`` (never a size or step count of our own): whatever is left
out is the backend's choice.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import click

#: The one general setting with a flag here: which backend.
PROVIDER_PARAM = "provider"


@dataclass(frozen=True)
class BackendFlag:
    """One CLI flag and the setting it sets in each backend that declares it."""

    flag: str
    param: str
    kind: type
    settings: dict[str, Any]  # provider -> DeclaredSetting

    def help(self) -> str:
        helps = {(s.spec.help, s.spec.env[0]) for s in self.settings.values()}
        if len(helps) == 1:
            (text, var), providers = next(iter(helps)), "/".join(self.settings)
            return f"{providers}: {text} (env {var})"
        return " ".join(f"{name}: {s.spec.help} (env {s.spec.env[0]})" for name, s in self.settings.items())


@functools.cache
def backend_flags() -> dict[str, BackendFlag]:
    """param -> :class:`BackendFlag`, from the declarations of every known backend."""
    from ..backends import backend_config_classes
    from ..config import declared_settings

    flags: dict[str, BackendFlag] = {}
    for provider, config_class in sorted(backend_config_classes().items()):
        for declared in declared_settings(config_class):
            entry = flags.setdefault(declared.param, BackendFlag(declared.flag, declared.param, declared.kind, {}))
            if entry.kind is not declared.kind:
                raise TypeError(
                    f"{declared.flag} is a {entry.kind.__name__} in one backend, "
                    f"a {declared.kind.__name__} in {provider}"
                )
            entry.settings[provider] = declared
    return flags


def _click_option(flag: str, param: str, kind: type, help_text: str, *, multiple: bool = False) -> Callable[[Any], Any]:
    if kind is bool:
        name = flag.removeprefix("--")
        if name.startswith("no-"):  # already a negation (--no-auth): a plain switch, not --no-no-auth
            return click.option(flag, param, is_flag=True, default=None, help=help_text)
        return click.option(f"--{name}/--no-{name}", param, default=None, help=help_text)
    click_type = {int: click.IntRange(min=0), float: click.FloatRange(min=0)}.get(kind, str)
    return click.option(flag, param, type=click_type, multiple=multiple, help=help_text)


def setting_options(config_class: type, prefix: str) -> Callable[[Any], Any]:
    """A click option for every setting ``config_class`` declares, its parameter named ``prefix`` +
    the setting's name (so it cannot collide with a backend flag's); a tuple setting repeats."""
    from ..config import declared_settings

    return stack_options(
        *(
            _click_option(
                s.flag,
                prefix + s.name,
                s.kind,
                f"{s.spec.help} (env {s.spec.env[0]})",
                multiple=isinstance(s.default, tuple),
            )
            for s in declared_settings(config_class)
        )
    )


def pop_setting_options(values: dict[str, Any], config_class: type, prefix: str) -> dict[str, Any]:
    """Take :func:`setting_options`' values out of a command's parameters, keyed by setting name."""
    from ..config import declared_settings

    taken = {s.name: values.pop(prefix + s.name, None) for s in declared_settings(config_class)}
    return {name: value for name, value in taken.items() if value not in (None, ())}


def pop_backend_flags(values: dict[str, Any]) -> dict[str, Any]:
    """Take the backend flags (``--provider`` included) out of a command's parameter values."""
    return {name: values.pop(name, None) for name in (PROVIDER_PARAM, *backend_flags())}


def settings_from_flags(flags: Mapping[str, Any], provider: str, strict: bool = True) -> dict[str, Any]:
    """The chosen backend's explicit setting values from the backend flags that were given.

    A flag that ``provider`` does not declare is a usage error naming the backends it belongs to
    (silently ignoring ``--device`` on an HTTP backend would hide a mistake), unless not ``strict``.
    """
    table = backend_flags()
    explicit: dict[str, Any] = {}
    for param, value in flags.items():
        if value is None or param == PROVIDER_PARAM or param not in table:
            continue
        entry = table[param]
        declared = entry.settings.get(provider)
        if declared is None and not strict:
            continue
        if declared is None:
            owners = ", ".join(entry.settings)
            raise click.UsageError(f"{entry.flag} is a setting of {owners}, not of the {provider} backend")
        explicit[declared.name] = value
    return explicit


def stack_options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One decorator applying ``decorators`` in order (so shared option groups stay one name)."""

    def apply(func: Any) -> Any:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def _check_provider(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An unknown backend name is a usage error (exit 2), listing the known ones."""
    if value is None:
        return None
    from ..backends import canonical_backend_name
    from ..errors import BackendNotConfiguredError

    try:
        canonical_backend_name(value)
    except BackendNotConfiguredError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def backend_options(
    func: Any = None, *, renamed: Mapping[str, str] | None = None, repeatable: tuple[str, ...] = ()
) -> Any:
    """``--provider`` and every declared backend flag (see the module docstring). ``renamed`` gives
    some of them another flag on one command (``serve`` keeps ``--api-key`` for its own keys);
    ``repeatable`` ones may be given several times (``serve --ray --model A --model B``)."""
    if func is None:
        return functools.partial(backend_options, renamed=renamed, repeatable=repeatable)
    renamed = renamed or {}
    provider = click.option(
        "--provider",
        callback=_check_provider,
        help="Backend: openai, diffusers, sdcpp or a plugin (env ABSTRACTVISION_PROVIDER).",
    )
    options = (
        _click_option(renamed.get(e.param, e.flag), e.param, e.kind, e.help(), multiple=e.param in repeatable)
        for e in backend_flags().values()
    )
    return stack_options(provider, *options)(func)


def parse_lora_words(ctx: click.Context | None, param: click.Parameter | None, words: Any) -> tuple[Any, ...]:
    """``--lora`` words as checked :class:`~abstractvision.LoRAAdapterSpec` s (the option's callback);
    a bad one is a usage error naming ``--lora``, so a typo fails before any model loads."""
    from ..errors import InvalidRequestError
    from ..lora import as_lora_adapters

    try:
        return as_lora_adapters(list(words or ()), "lora")
    except InvalidRequestError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param, param_hint="--lora") from None


def lora_words(adapters: Any) -> str:
    """Adapters as the ``--lora`` words that give them (``ink:0.8 glow``), for displays."""
    return " ".join(spec.source if spec.scale == 1 else f"{spec.source}:{spec.scale:g}" for spec in adapters)


# Generation options, by the tasks that take them.
_GENERATION_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any], tuple[str, ...]]] = {
    "negative_prompt": (("--negative-prompt",), {"help": "What the image should not show."}, ()),
    "width": (("--width",), {"type": click.IntRange(min=1), "help": "Width in pixels."}, ("i2i",)),
    "height": (("--height",), {"type": click.IntRange(min=1), "help": "Height in pixels."}, ("i2i",)),
    "steps": (("--steps",), {"type": click.IntRange(min=1), "help": "Denoising steps."}, ()),
    "seed": (("--seed",), {"type": click.IntRange(min=0), "help": "Seed, for reproducible results."}, ()),
    "guidance_scale": (("--guidance-scale",), {"type": float, "help": "Classifier-free guidance scale."}, ()),
    "strength": (
        ("--strength",),
        {"type": click.FloatRange(0, 1), "help": "How much of the input image to change (0..1)."},
        ("t2i", "t2v", "i2v"),
    ),
    "fps": (("--fps",), {"type": click.IntRange(min=1), "help": "Video frames per second."}, ("t2i", "i2i")),
    "num_frames": (
        ("--num-frames",),
        {"type": click.IntRange(min=1), "help": "Video length in frames."},
        ("t2i", "i2i"),
    ),
    "lora": (
        ("--lora",),
        {
            "multiple": True,
            "metavar": "PATH_OR_ID[:SCALE]",
            "callback": parse_lora_words,
            "help": "A LoRA adapter: a file, repo id or id from provider-adapters (scale 1 unless given). Repeatable.",
        },
        ("t2v", "i2v"),
    ),
    "count": (("--count", "-n"), {"type": click.IntRange(min=1), "help": "How many to make."}, ()),
    "seeds": (("--seeds",), {"help": "Comma-separated seeds, one result each (e.g. 1,2,3)."}, ()),
    "param": (
        ("--param", "-p"),
        {"multiple": True, "metavar": "KEY=VALUE", "help": "Provider parameter passed through (JSON values parsed)."},
        (),
    ),
}

GENERATION_PARAMS = tuple(_GENERATION_OPTIONS)


def generation_options(command: str) -> Callable[[Any], Any]:
    """The generation options of one task command (``t2i``, ``i2i``, ``t2v``, ``i2v``)."""
    decorators = [
        click.option(*decls, **kwargs)
        for decls, kwargs, excluded in _GENERATION_OPTIONS.values()
        if command not in excluded
    ]
    return stack_options(*decorators)


def options_named(*names: str) -> Callable[[Any], Any]:
    """Some of the generation options, by parameter name (``upscale`` takes a few of them)."""
    return stack_options(*(click.option(*_GENERATION_OPTIONS[n][0], **_GENERATION_OPTIONS[n][1]) for n in names))


output_options = stack_options(
    click.option("-o", "--output", type=click.Path(), help="File or directory to write; default: the asset store."),
    click.option("--open", "open_result", is_flag=True, help="Open the result with the system viewer."),
    click.option("--cap-model", help="Refuse tasks the capability registry says this model cannot do."),
    click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of paths."),
    click.option("-q", "--quiet", is_flag=True, help="No progress display."),
)


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as JSON when it is JSON (``3``, ``true``, ``[1,2]``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--param")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers", param_hint="--seeds") from None
    if not seeds:
        raise click.BadParameter("give at least one seed", param_hint="--seeds")
    return seeds


__all__ = [
    "GENERATION_PARAMS",
    "PROVIDER_PARAM",
    "BackendFlag",
    "backend_flags",
    "backend_options",
    "generation_options",
    "lora_words",
    "options_named",
    "output_options",
    "parse_lora_words",
    "parse_param",
    "parse_seeds",
    "pop_backend_flags",
    "settings_from_flags",
    "stack_options",
]
