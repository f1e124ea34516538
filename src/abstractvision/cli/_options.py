"""Options shared by several commands, and how backend flags become settings.

Backend flags are not passed to a backend directly: each one sets a field of
:class:`~abstractvision.config.Settings` explicitly, so the precedence (*flag > environment >
default*) and the ``config`` command's "where did this come from" are the library's own, and the
backend is then built by the public factory from those settings. Generation options default to
``None`` (never a size or step count of our own): whatever is left out is the backend's choice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import click

#: backend flag -> the Settings field it sets, where that field is the same for every provider
FLAG_SETTINGS: dict[str, str] = {
    "provider": "provider",
    "base_url": "base_url",
    "api_key": "api_key",
    "max_retries": "max_retries",
    "device": "diffusers_device",
    "dtype": "diffusers_torch_dtype",
    "allow_download": "diffusers_allow_download",
    "cache_dir": "diffusers_cache_dir",
    "sd_cli": "sdcpp_bin",
    "sd_mode": "sdcpp_mode",
    "diffusion_model": "sdcpp_diffusion_model",
    "vae": "sdcpp_vae",
    "llm": "sdcpp_llm",
    "llm_vision": "sdcpp_llm_vision",
    "clip_l": "sdcpp_clip_l",
    "clip_g": "sdcpp_clip_g",
    "t5xxl": "sdcpp_t5xxl",
    "extra_args": "sdcpp_extra_args",
    "models_dir": "sdcpp_models_dir",
}

#: backend flag -> provider -> Settings field, for flags whose field depends on the provider
#: (``"*"``: any other provider)
PROVIDER_FLAG_SETTINGS: dict[str, dict[str, str]] = {
    "model": {"diffusers": "diffusers_model", "sdcpp": "sdcpp_model", "*": "model_id"},
    "timeout": {"sdcpp": "sdcpp_timeout_s", "*": "timeout_s"},
}

BACKEND_FLAGS = (*FLAG_SETTINGS, *PROVIDER_FLAG_SETTINGS)


def settings_from_flags(flags: Mapping[str, Any], provider: str | None) -> dict[str, Any]:
    """Explicit Settings values for the backend flags that were given (``None`` = not given)."""
    explicit: dict[str, Any] = {}
    for flag, value in flags.items():
        if value is None:
            continue
        if flag in FLAG_SETTINGS:
            explicit[FLAG_SETTINGS[flag]] = value
        elif flag in PROVIDER_FLAG_SETTINGS:
            by_provider = PROVIDER_FLAG_SETTINGS[flag]
            explicit[by_provider.get(provider or "*", by_provider["*"])] = value
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


backend_options = stack_options(
    click.option(
        "--provider",
        callback=_check_provider,
        help="Backend: openai, diffusers, sdcpp or a plugin (env ABSTRACTVISION_PROVIDER).",
    ),
    click.option("--model", help="Model id (OpenAI, Diffusers) or model file (sdcpp); optional for some backends."),
    click.option("--base-url", help="OpenAI-compatible service URL, e.g. http://127.0.0.1:8000/v1."),
    click.option("--api-key", help="API key for the service (prefer OPENAI_API_KEY / ABSTRACTVISION_API_KEY)."),
    click.option("--timeout", type=click.FloatRange(min=0), help="Seconds before a request or local run is abandoned."),
    click.option("--max-retries", type=click.IntRange(min=0), help="Retries of a failed HTTP request."),
    click.option("--device", help="Diffusers device: auto, cpu, cuda, cuda:1, mps."),
    click.option("--dtype", help="Diffusers torch dtype: auto, float16, bfloat16, float32."),
    click.option(
        "--allow-download/--no-allow-download",
        default=None,
        help="Let Diffusers download a model that is not in the local cache (off unless given).",
    ),
    click.option("--cache-dir", help="Hugging Face cache folder Diffusers reads from."),
    click.option("--sd-cli", help="Path or name of the stable-diffusion.cpp `sd-cli` executable."),
    click.option("--sd-mode", help="stable-diffusion.cpp mode: auto, cli (sd-cli) or python (bindings)."),
    click.option("--diffusion-model", help="sdcpp: diffusion model file (GGUF) of a split model."),
    click.option("--vae", help="sdcpp: VAE file."),
    click.option("--llm", help="sdcpp: text-encoder LLM file (Qwen-Image, FLUX.2)."),
    click.option("--llm-vision", help="sdcpp: vision projector of the LLM."),
    click.option("--clip-l", help="sdcpp: CLIP-L text encoder file."),
    click.option("--clip-g", help="sdcpp: CLIP-G text encoder file."),
    click.option("--t5xxl", help="sdcpp: T5-XXL text encoder file."),
    click.option("--extra-args", help='sdcpp: extra sd-cli arguments, e.g. "--sampling-method euler".'),
)

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
    "BACKEND_FLAGS",
    "FLAG_SETTINGS",
    "GENERATION_PARAMS",
    "PROVIDER_FLAG_SETTINGS",
    "backend_options",
    "generation_options",
    "output_options",
    "parse_param",
    "parse_seeds",
    "settings_from_flags",
    "stack_options",
]
