"""Turn failures into what a terminal user needs: one line and exit code 1.

Why one place: every command, and every REPL line, must report a library error the same way,
with the traceback only when ``--debug`` asked for it, and with the password of any
``user:password@`` URL in it masked, whichever module wrote the message.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import AbstractVisionError

F = TypeVar("F", bound=Callable[..., Any])

_MAX_MESSAGE = 600

#: A URL inside a message (up to whitespace or a quote).


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """Whether the root command got ``--debug``."""
    ctx = ctx or click.get_current_context(silent=True)
    return ctx is not None and bool((ctx.find_root().obj or {}).get("debug"))


def one_line(exc: BaseException) -> str:
    """The error as one bounded line, URL passwords masked; unexpected exceptions keep their type name."""
    from ..redaction import redact_urls_in

    text = redact_urls_in(" ".join(str(exc).split())) or type(exc).__name__
    if not isinstance(exc, AbstractVisionError):
        text = f"{type(exc).__name__}: {text} (run with --debug for the traceback)"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def report_failure(exc: BaseException, debug: bool) -> str:
    """Print the traceback when ``debug``; return the one-line message."""
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return one_line(exc)


def reports_errors(func: F) -> F:
    """Command decorator: any non-click exception becomes ``Error: <one line>`` and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:
            raise click.ClickException(report_failure(exc, debug_enabled())) from exc

    return wrapper  # type: ignore[return-value]


__all__ = ["debug_enabled", "one_line", "report_failure", "reports_errors"]
