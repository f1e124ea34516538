"""``config``: the effective settings and where each came from (flag, environment, default)."""

from __future__ import annotations

from typing import Any

import click

from ._errors import reports_errors
from ._options import backend_options
from ._render import print_json, print_table
from ._session import BackendSession


def describe_source(source: str) -> str:
    """``argument`` -> ``flag``, ``env:NAME`` -> ``env NAME``, ``default`` stays."""
    if source == "argument":
        return "flag"
    if source.startswith("env:"):
        return f"env {source[4:]}"
    return source


def config_rows(session: BackendSession) -> list[tuple[str, Any, str]]:
    """The general settings, then ``backend.setting`` rows of the chosen backend (of every backend
    when none is chosen yet); secrets redacted by the declarations."""
    from ..backends import backend_config_classes
    from ..errors import BackendNotConfiguredError

    rows = list(session.settings.describe())
    try:
        providers, strict = [session.provider], True
    except BackendNotConfiguredError:
        providers, strict = sorted(backend_config_classes()), False  # a flag shows under its own backends
    for provider in providers:
        resolved = session.resolve(provider, strict=strict)
        if resolved is not None:
            rows += [(f"{provider}.{name}", value, source) for name, value, source in resolved.describe()]
    return [(name, value, describe_source(source)) for name, value, source in rows]


def show_config(session: BackendSession, as_json: bool) -> None:
    """Print every setting and where its value came from."""
    rows = config_rows(session)
    if as_json:
        print_json({name: {"value": value, "source": source} for name, value, source in rows})
        return
    print_table("Effective settings", ("setting", "value", "source"), rows)


@click.command()
@backend_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def config(as_json: bool, **flags: Any) -> None:
    """Show the effective settings and where each came from; the backend flags count as given.

    Secrets are redacted. Nothing is loaded and nothing is contacted.
    """
    show_config(BackendSession(flags), as_json)


__all__ = ["config", "config_rows", "describe_source", "show_config"]
