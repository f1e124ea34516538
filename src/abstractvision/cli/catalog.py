"""``provider-models``: a provider's own catalog (remote ``/models``, cached pipelines, model files).

Listing never selects a model: it only reads the catalog of the backend the flags describe.
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


__all__ = ["list_provider_models", "provider_models"]
