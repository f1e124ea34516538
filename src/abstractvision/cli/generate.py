"""``t2i``, ``i2i``, ``t2v``, ``i2v``: one-shot generation, also used by the REPL's ``/t2i`` etc.

A command is built by :func:`make_task_command` from the task's options; the REPL builds the same
commands without the backend options (its backend comes from ``/backend``) and runs them through
:func:`run_task` with its own session and defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ._errors import reports_errors
from ._options import (
    backend_options,
    generation_options,
    output_options,
    parse_param,
    parse_seeds,
    pop_backend_flags,
    stack_options,
)
from ._session import BackendSession

#: command -> (task, manager method, manager batch method, help)
TASK_COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "t2i": ("text_to_image", "generate_image", "generate_image_batch", "Generate an image from PROMPT."),
    "i2i": ("image_to_image", "edit_image", "edit_image_batch", "Edit --image as PROMPT says (with --mask: inpaint)."),
    "t2v": ("text_to_video", "generate_video", "generate_video_batch", "Generate a video from PROMPT."),
    "i2v": ("image_to_video", "image_to_video", "image_to_video_batch", "Animate --image (PROMPT optional)."),
}

#: options that steer the command rather than the request
_CONTROL = ("output", "open_result", "as_json", "quiet", "cap_model")


def _image_options(command: str) -> Any:
    image_type = click.Path(exists=True, dir_okay=False)
    decorators = []
    if command in ("i2i", "i2v"):
        decorators.append(click.option("--image", required=True, type=image_type, help="Input image file."))
    if command == "i2i":
        decorators.append(click.option("--mask", type=image_type, help="Mask image: white areas are repainted."))
    return stack_options(*decorators)


def make_task_command(command: str, *, with_backend: bool = True) -> click.Command:
    """The click command for one task; ``with_backend=False`` for the REPL."""
    task, _, _, help_text = TASK_COMMANDS[command]

    @reports_errors
    def callback(**values: Any) -> None:
        session = BackendSession(pop_backend_flags(values))
        try:
            run_task(session, command, values)
        finally:
            session.close()

    func: Any = callback  # decorators apply bottom-up: --help lists image, generation, output, backend options
    if with_backend:
        func = backend_options(func)
    func = output_options(func)
    func = generation_options(command)(func)
    func = _image_options(command)(func)
    prompt_required = command != "i2v"
    func = click.argument("prompt", nargs=-1, required=prompt_required)(func)
    return click.command(command, help=help_text, short_help=help_text)(func)


def request_params(command: str, values: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any], bool]:
    """(positional args, keyword args, is_batch) of the manager call for these option values."""
    kwargs = {k: v for k, v in values.items() if v is not None and k not in (*_CONTROL, "prompt", "param", "lora")}
    if values.get("lora"):  # already specs (the option's callback read the words)
        kwargs["lora_adapters"] = list(values["lora"])
    for key, value in (parse_param(item) for item in values.get("param") or ()):
        kwargs[key] = value
    if isinstance(kwargs.get("seeds"), str):
        kwargs["seeds"] = parse_seeds(kwargs["seeds"])
    prompt = " ".join(values.get("prompt") or ()) or None
    if command == "i2v":
        args: tuple[Any, ...] = (kwargs.pop("image"), prompt)
    elif command == "i2i":
        args = (prompt or "", kwargs.pop("image"))
    else:
        args = (prompt or "",)
    is_batch = "count" in kwargs or "seeds" in kwargs
    return args, kwargs, is_batch


def run_task(session: BackendSession, command: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Generate, save where asked, print paths (or JSON), open if asked; return the saved records.

    Failures come after the output, so what was made is always listed: a failed batch item, or a
    file that could not be written (its result is in the asset store; the message says where).
    """
    from ..errors import BatchGenerationError
    from ._output import prepare_output
    from ._render import progress_callback

    task, method, batch_method, _ = TASK_COMMANDS[command]
    args, kwargs, is_batch = request_params(command, values)
    target = prepare_output(values.get("output"))
    manager = session.manager(values.get("cap_model"))
    items = len(kwargs["seeds"]) if "seeds" in kwargs else kwargs.get("count", 1)
    failure: BatchGenerationError | None = None
    with progress_callback(command, quiet=bool(values.get("quiet")), total_items=items) as on_progress:
        if is_batch:
            try:
                assets = getattr(manager, batch_method)(*args, on_progress=on_progress, **kwargs)
            except BatchGenerationError as exc:  # keep what was made, then report the failure
                assets, failure = exc.results, exc
        else:
            assets = [getattr(manager, method)(*args, on_progress=on_progress, **kwargs)]
    return deliver(session, task, assets, target, values, prompt=_prompt_of(args, command), failure=failure)


def deliver(
    session: BackendSession,
    task: str,
    assets: list[Any],
    target: Any,
    values: Mapping[str, Any],
    *,
    prompt: str | None,
    failure: Exception | None = None,
) -> list[dict[str, Any]]:
    """Save ``assets`` to ``target`` (from ``prepare_output``), print their paths (or ``--json``), open
    them if asked; then raise ``failure`` (a batch's), or a write that failed. Returns the records."""
    from ..errors import InvalidRequestError
    from ._output import open_files, save_assets
    from ._render import print_json

    records = save_assets(assets, target, task, session.settings.store_dir, prompt=prompt)
    if values.get("as_json"):
        print_json({"task": task, "backend": session.provider, "assets": records})
    else:
        for record in records:
            click.echo(record["path"])
    if values.get("open_result"):
        open_files(records)
    unwritten = [record["write_error"] for record in records if "write_error" in record]
    if unwritten:
        message = "output: " + "; ".join(unwritten)
        if failure is None:
            raise InvalidRequestError(message, field="output")
        click.echo(f"Error: {message}", err=True)
    if failure is not None:
        raise failure
    return records


def _prompt_of(args: tuple[Any, ...], command: str) -> str | None:
    """The prompt among a manager call's positional arguments (``i2v`` has the image first)."""
    return args[1] if command == "i2v" else args[0]


t2i = make_task_command("t2i")
i2i = make_task_command("i2i")
t2v = make_task_command("t2v")
i2v = make_task_command("i2v")

__all__ = ["TASK_COMMANDS", "deliver", "i2i", "i2v", "make_task_command", "request_params", "run_task", "t2i", "t2v"]
