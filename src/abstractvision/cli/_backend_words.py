"""The REPL's ``/backend NAME ...`` words -> explicit values of that backend's declared settings.

Two forms, both derived from the backend's config: positional shorthands (the config's
``positional_forms``; a backend without any takes its model, the setting whose flag is
``--model``), and ``name=value`` for any declared setting, by field name or flag name
(``model_id=...``, ``dtype=float16``, ``sd-cli=/opt/sd-cli``). Values are read like the
environment variable would be (``timeout=30``, ``allow_download=1``).
"""

from __future__ import annotations

from typing import Any

import click


def _declared(provider: str) -> dict[str, Any]:
    """Field name and flag name (``dtype``, ``sd_cli``) -> declared setting."""
    from ..backends import get_backend_config_class
    from ..config import declared_settings

    config_class = get_backend_config_class(provider)
    names: dict[str, Any] = {}
    for declared in declared_settings(config_class) if config_class is not None else ():
        names[declared.name] = names[declared.param] = declared
    return names


def model_setting(provider: str) -> str | None:
    """The field the backend's ``--model`` flag sets (``model_id``, ``model``), if it has one."""
    return next((s.name for s in _declared(provider).values() if s.flag == "--model"), None)


def backend_forms(provider: str) -> tuple[tuple[str, ...], ...]:
    """The positional forms ``/backend provider ...`` accepts; no words at all always fit (the
    environment, or ``name=value`` words, say the rest)."""
    from ..backends import get_backend_config_class

    forms = getattr(get_backend_config_class(provider), "positional_forms", None)
    if forms is None:
        model = model_setting(provider)
        forms = ((model,),) if model else ()
    return ((), *forms)


def secret_positions(provider: str) -> set[int]:
    """Positions of ``/backend provider`` words that hold a secret in some form (masked in the history)."""
    declared = _declared(provider)
    return {
        index
        for form in backend_forms(provider)
        for index, name in enumerate(form)
        if name in declared and declared[name].spec.secret
    }


def parse_backend_words(provider: str, words: list[str]) -> dict[str, Any]:
    """Explicit setting values for ``/backend provider WORDS...``; a usage error says what fits."""
    declared = _declared(provider)
    named = [w for w in words if w.partition("=")[0].lstrip("-").replace("-", "_") in declared and "=" in w]
    positional = [w for w in words if w not in named]
    forms = backend_forms(provider)
    form = next((f for f in forms if len(f) == len(positional)), None)
    if form is None:
        usage = " | ".join(" ".join(f"<{n}>" for n in f) or "(no arguments)" for f in forms)
        names = ", ".join(sorted({s.name for s in declared.values()})) or "none"
        raise click.UsageError(f"/backend {provider} takes {usage}, and name=value for: {names}")
    values = {
        name: declared[name].parse(word, name) if name in declared else word
        for name, word in zip(form, positional, strict=True)
    }
    for word in named:
        key, _, raw = word.partition("=")
        setting = declared[key.lstrip("-").replace("-", "_")]
        values[setting.name] = setting.parse(raw, key)
    return values


__all__ = ["backend_forms", "model_setting", "parse_backend_words", "secret_positions"]
