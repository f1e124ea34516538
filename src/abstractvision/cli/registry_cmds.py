"""``models``, ``tasks`` and ``show-model``: what the capability registry knows, no backend needed."""

from __future__ import annotations

from typing import Any

import click

from ._errors import reports_errors
from ._render import print_json, print_table


def _registry() -> Any:
    from ..model_capabilities import VisionModelCapabilitiesRegistry

    return VisionModelCapabilitiesRegistry()


def _task_choice() -> click.Choice:
    from ..types import TASKS

    return click.Choice(TASKS)


def list_models(task: str | None, as_json: bool) -> None:
    registry = _registry()
    ids = registry.models_for_task(task) if task else registry.list_models()
    entries = [registry.get(model_id) for model_id in ids]
    if as_json:
        print_json([{"id": m.id, "provider": m.provider, "family": m.family, "tasks": list(m.tasks)} for m in entries])
        return
    rows = [(m.id, m.provider, m.family, ", ".join(m.tasks)) for m in entries]
    print_table(f"Models{' for ' + task if task else ''}", ("model", "provider", "family", "tasks"), rows)


def list_tasks(as_json: bool) -> None:
    registry = _registry()
    described = [(task, registry.task_description(task)) for task in registry.list_tasks()]
    if as_json:
        print_json([{"task": task, "description": text} for task, text in described])
        return
    print_table("Tasks", ("task", "description"), described)


def describe_model(model_id: str, as_json: bool) -> None:
    caps = _registry().get(model_id)
    if as_json:
        print_json(
            {
                "id": caps.id,
                "provider": caps.provider,
                "family": caps.family,
                "license": caps.license,
                "aliases": list(caps.aliases),
                "notes": caps.notes,
                "tasks": {
                    name: {
                        "notes": spec.notes,
                        "requires": list(spec.requires),
                        "params": {p.name: _param_dict(p) for p in spec.params.values()},
                    }
                    for name, spec in caps.tasks.items()
                },
            }
        )
        return
    click.echo(f"{caps.id}  (provider: {caps.provider}, family: {caps.family or '-'}, license: {caps.license or '-'})")
    if caps.aliases:
        click.echo(f"aliases: {', '.join(caps.aliases)}")
    if caps.notes:
        click.echo(f"notes: {caps.notes}")
    for name, spec in caps.tasks.items():
        rows = [(p.name, p.default, _limits(p), p.description) for p in spec.params.values()]
        title = name + (f" (requires: {', '.join(spec.requires)})" if spec.requires else "")
        print_table(title, ("parameter", "default", "limits", "description"), rows)
        if spec.notes:
            click.echo(f"  {spec.notes}")


def _param_dict(param: Any) -> dict[str, Any]:
    return {
        "default": param.default,
        "min": param.min,
        "max": param.max,
        "multiple_of": param.multiple_of,
        "choices": list(param.choices),
        "description": param.description,
    }


def _limits(param: Any) -> str:
    parts = []
    if param.min is not None or param.max is not None:
        parts.append(f"{_number(param.min)}..{_number(param.max)}")
    if param.multiple_of:
        parts.append(f"multiple of {param.multiple_of}")
    if param.choices:
        parts.append("one of " + ", ".join(map(str, param.choices)))
    return "; ".join(parts)


def _number(value: Any) -> str:
    return "" if value is None else f"{value:g}"


@click.command()
@click.option("--task", type=_task_choice(), help="Only models that can do this task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def models(task: str | None, as_json: bool) -> None:
    """List the models the capability registry knows (optionally those fit for a task)."""
    list_models(task, as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def tasks(as_json: bool) -> None:
    """List the task names and what each does."""
    list_tasks(as_json)


@click.command("show-model")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def show_model(model_id: str, as_json: bool) -> None:
    """Show a registry model's tasks, parameters (defaults and limits) and notes."""
    describe_model(model_id, as_json)


__all__ = ["describe_model", "list_models", "list_tasks", "models", "show_model", "tasks"]
