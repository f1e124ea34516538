"""Every declared setting of every backend reaches the backend's config through every path.

The paths: an environment variable, a command-line flag (parsed by the real ``t2i`` command), a
REPL ``/backend`` word, an AbstractCore owner key, and ``abstractvision serve``'s backend flags
(parsed by the real ``serve`` command, reaching the backend the built app serves).
One sample value per setting, not the default, read from text the way each path gets it.
"""

from __future__ import annotations

from typing import Any

import pytest

from abstractvision.backends import backend_config_classes
from abstractvision.config import DeclaredSetting, declared_settings

#: What each backend needs before it can be built at all (so the setting under test is the only variable).
REQUIRED: dict[str, dict[str, str]] = {
    "openai": {"base_url": "http://127.0.0.1:9/v1"},
    "diffusers": {},
    "sdcpp": {"model": "/models/base.safetensors"},
}

#: Valid, non-default sample values where any text would not do (as text, and as the config holds it).
SAMPLES: dict[str, tuple[str, Any]] = {
    "base_url": ("http://127.0.0.1:8/v1", "http://127.0.0.1:8/v1"),
    "image_to_video_mode": ("json_b64", "json_b64"),
    "mode": ("cli", "cli"),
    "dialect": ("sdcpp", "sdcpp"),
    "extra_args": ("--threads 2", ("--threads", "2")),
    "api_key": ("sk-sample-123", "sk-sample-123"),
    "upscale_repeats": ("3", 3),  # 1 to 4 passes
}

CASES = [
    pytest.param(provider, declared, id=f"{provider}.{declared.name}")
    for provider, config_class in sorted(backend_config_classes().items())
    if provider in REQUIRED
    for declared in declared_settings(config_class)
]


def sample(declared: DeclaredSetting) -> tuple[str, Any]:
    """(the value as text, the value the config should hold)."""
    if declared.name in SAMPLES:
        return SAMPLES[declared.name]
    if declared.kind is bool:
        return ("0", False) if declared.default else ("1", True)
    if declared.kind is int:
        return "7", 7
    if declared.kind is float:
        return "7.5", 7.5
    return f"/sample/{declared.name}", f"/sample/{declared.name}"


def required_for(provider: str, declared: DeclaredSetting) -> dict[str, str]:
    return {k: v for k, v in REQUIRED[provider].items() if k != declared.name}


@pytest.mark.parametrize("provider,declared", CASES)
def test_environment(provider, declared):
    from abstractvision.backends import create_backend

    text, expected = sample(declared)
    backend = create_backend(provider, {declared.spec.env[0]: text}, **required_for(provider, declared))
    assert getattr(backend.config, declared.name) == expected


def command_args(command: Any, provider: str, declared: DeclaredSetting) -> list[str]:
    """``--provider`` and the flags that give ``declared`` its sample value, as ``command`` spells
    them (``serve`` renames the upstream ``--api-key``), the backend's required settings included."""
    options = {param.name: param for param in command.params}
    config_class = type(declared_config(provider))
    args = ["--provider", provider]
    for name, value in required_for(provider, declared).items():
        required = next(s for s in declared_settings(config_class) if s.name == name)
        args += [options[required.param].opts[0], value]
    text, expected = sample(declared)
    option = options[declared.param]
    if declared.kind is bool:
        args.append(option.opts[0] if expected else option.secondary_opts[0])
    else:
        args += [option.opts[0], text]
    return args


@pytest.mark.parametrize("provider,declared", CASES)
def test_cli_flag(provider, declared):
    from abstractvision.cli._options import pop_backend_flags
    from abstractvision.cli._session import BackendSession
    from abstractvision.cli.generate import t2i

    context = t2i.make_context("t2i", [*command_args(t2i, provider, declared), "a", "cat"])
    session = BackendSession(pop_backend_flags(dict(context.params)))
    assert getattr(session.backend.config, declared.name) == sample(declared)[1]


@pytest.mark.parametrize("provider,declared", CASES)
def test_serve_flag(provider, declared, tmp_path):
    """The backend ``abstractvision serve`` serves (the app it would listen with) got the flag's value."""
    pytest.importorskip("fastapi", reason="the [server] extra")
    from abstractvision.cli.serve import serve, served_app

    args = [*command_args(serve, provider, declared), "--store", str(tmp_path / "server")]
    app, _, _ = served_app(dict(serve.make_context("serve", args).params))
    served = app.state.service.runner.manager.backend
    assert getattr(served.config, declared.name) == sample(declared)[1]
    app.state.service.records.close()


@pytest.mark.parametrize("provider,declared", CASES)
def test_repl_backend_words(provider, declared, monkeypatch):
    from abstractvision.cli._session import BackendSession
    from abstractvision.cli.repl import Repl

    monkeypatch.chdir("/")
    text, expected = sample(declared)
    words = [f"{name}={value}" for name, value in required_for(provider, declared).items()]
    shell = Repl(BackendSession())
    assert shell.handle(f"/backend {provider} {' '.join(words)} {declared.name}={text!r}")
    assert getattr(shell.session.backend.config, declared.name) == expected


@pytest.mark.parametrize("provider,declared", CASES)
def test_abstractcore_owner_key(provider, declared):
    from abstractvision.config import declared_settings as declared_of
    from abstractvision.integrations._abstractcore_config import resolve_backend_plan

    text, expected = sample(declared)
    config_class = type(declared_config(provider))
    owner = {"vision_backend": provider, declared.owner_key: text}
    for name, value in required_for(provider, declared).items():
        owner[next(s for s in declared_of(config_class) if s.name == name).owner_key] = value
    assert getattr(resolve_backend_plan(owner, environ={}).build().config, declared.name) == expected


def declared_config(provider: str) -> Any:
    """A default config of ``provider`` (its type is all these tests need)."""
    config_class = backend_config_classes()[provider]
    return config_class(**REQUIRED[provider])
