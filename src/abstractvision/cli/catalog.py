"""``provider-models`` and ``provider-adapters``: a provider's own catalog (remote ``/models``, cached
pipelines, model files) and the LoRA adapters it can use (an adapter folder, LoRA repos in the HF cache).

Listing never selects a model or an adapter: it only reads the catalog of the backend the flags describe.
"""

from __future__ import annotations

from typing import Any

import click

from ._errors import reports_errors
from ._options import backend_options
from ._render import print_json, print_table
from ._session import BackendSession


def list_provider_models(session: BackendSession, task: str | None, as_json: bool) -> None:
    infos = session.manager().list_provider_models(task=task)
    if as_json:
        print_json(
            [
                {"id": m.id, "owned_by": m.owned_by, "created": m.created, "capabilities": list(m.capabilities)}
                for m in infos
            ]
        )
        return
    title = f"{session.provider} models" + (f" for {task}" if task else "")
    rows = [(m.id, m.owned_by, ", ".join(m.capabilities)) for m in infos]
    print_table(title, ("model", "owned by", "tasks"), rows)
    if not infos:
        click.echo("(none found)", err=True)


@click.command("provider-models")
@click.option("--openai", "use_openai", is_flag=True, help="OpenAI's API (key from OPENAI_API_KEY).")
@backend_options
@click.option("--task", help="Only models fit for this task (e.g. text_to_image).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def provider_models(use_openai: bool, task: str | None, as_json: bool, **flags: Any) -> None:
    """List the models a provider offers: `--openai`, `--base-url URL`, `--provider diffusers`
    (cached pipelines) or `--provider sdcpp --models-dir DIR`. Selects nothing."""
    if use_openai:
        if flags.get("provider") not in (None, "openai"):
            raise click.UsageError("--openai and --provider name different backends; give one")
        flags["provider"] = "openai"
    session = BackendSession(flags)
    if use_openai and not session.resolved.value("base_url"):  # OpenAI's own API unless a URL is configured
        from ..backends.openai_compatible import OPENAI_API_URL

        session = BackendSession({**flags, "base_url": OPENAI_API_URL})
    try:
        list_provider_models(session, task, as_json)
    finally:
        session.close()


def list_provider_adapters(session: BackendSession, as_json: bool) -> None:
    infos = session.manager().list_provider_adapters()
    if as_json:
        print_json(
            [{"id": a.id, "path": a.path, "weight_name": a.weight_name, "size_bytes": a.size_bytes} for a in infos]
        )
        return
    rows = [(a.id, a.weight_name, _size(a.size_bytes), a.path) for a in infos]
    columns = ("adapter", "weight name", "size", "path")
    if not any(a.weight_name for a in infos):  # folders of files have none: no empty column
        rows, columns = [(r[0], *r[2:]) for r in rows], ("adapter", "size", "path")
    print_table(f"{session.provider} adapters", columns, rows)
    if not infos:
        click.echo("(none found)", err=True)


def _size(size_bytes: int | None) -> str | None:
    if size_bytes is None:
        return None
    return f"{size_bytes / 1024**2:.1f} MB" if size_bytes >= 1024**2 else f"{size_bytes / 1024:.1f} kB"


@click.command("provider-adapters")
@backend_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def provider_adapters(as_json: bool, **flags: Any) -> None:
    """List the LoRA adapters a backend can use (its adapter folder, LoRA repos in the HF cache):
    pass an id to `--lora`. Selects nothing."""
    session = BackendSession(flags)
    try:
        list_provider_adapters(session, as_json)
    finally:
        session.close()


__all__ = ["list_provider_adapters", "list_provider_models", "provider_adapters", "provider_models"]
