"""``upscale IMAGE``: enlarge an image with the backend's upscaler; also the REPL's ``/upscale``.

The backend needs an upscaler configured (Diffusers ``--upscaler``, stable-diffusion.cpp
``--upscale-model``); without one the command says which setting to give. Output, progress and
``--json`` work as for ``t2i`` (:func:`.generate.deliver`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ._errors import reports_errors
from ._options import backend_options, options_named, output_options, parse_param, pop_backend_flags
from ._session import BackendSession

#: Option values that go to ``VisionManager.upscale_image`` as they are.
_REQUEST_PARAMS = ("scale", "resolution", "prompt", "negative_prompt", "steps", "seed", "guidance_scale")

_HELP = "Upscale IMAGE by --scale or to --resolution (default: the upscaler's own factor)."


class _Resolution(click.ParamType):
    """``WIDTHxHEIGHT`` -> ``(width, height)``."""

    name = "WIDTHxHEIGHT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        width, sep, height = str(value).lower().partition("x")
        if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
            self.fail(f"{value!r} is not WIDTHxHEIGHT (e.g. 2048x1536)", param, ctx)
        return int(width), int(height)


def make_upscale_command(*, with_backend: bool = True) -> click.Command:
    """The click command; ``with_backend=False`` for the REPL (its backend comes from ``/backend``)."""

    @reports_errors
    def callback(**values: Any) -> None:
        session = BackendSession(pop_backend_flags(values))
        try:
            run_upscale(session, values)
        finally:
            session.close()

    func: Any = callback  # decorators apply bottom-up: --help lists the upscale, output, backend options
    if with_backend:
        func = backend_options(func)
    func = output_options(func)
    func = options_named("negative_prompt", "steps", "seed", "guidance_scale", "param")(func)
    func = click.option("--prompt", help="What the image shows (prompt-guided upscalers; others ignore it).")(func)
    func = click.option("--resolution", type=_Resolution(), help="Exact output size, e.g. 2048x1536.")(func)
    func = click.option("--scale", type=click.FloatRange(1, 16), help="Enlarge by this factor (e.g. 2, 4).")(func)
    func = click.argument("image", type=click.Path(exists=True, dir_okay=False))(func)
    return click.command("upscale", help=_HELP, short_help=_HELP)(func)


def run_upscale(session: BackendSession, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Upscale, then save, print and open like the generation commands; return the saved records."""
    from ..backends.base_backend import UPSCALE_TASK
    from ._output import prepare_output
    from ._render import progress_callback
    from .generate import deliver

    kwargs = {name: values[name] for name in _REQUEST_PARAMS if values.get(name) is not None}
    for key, value in (parse_param(item) for item in values.get("param") or ()):
        kwargs[key] = value
    target = prepare_output(values.get("output"))
    manager = session.manager(values.get("cap_model"))
    with progress_callback("upscale", quiet=bool(values.get("quiet"))) as on_progress:
        asset = manager.upscale_image(values["image"], on_progress=on_progress, **kwargs)
    name = f"{Path(values['image']).stem} upscaled"  # the default outputs folder names files after it
    return deliver(session, UPSCALE_TASK, [asset], target, values, prompt=name)


upscale = make_upscale_command()

__all__ = ["make_upscale_command", "run_upscale", "upscale"]
