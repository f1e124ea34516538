"""``abstractvision serve``: the OpenAI-compatible server over the chosen backend.

It takes the backend flags every generating command takes (one exception: the upstream service's
key is ``--upstream-api-key`` here, since ``--api-key`` gives the server's own keys) plus the
server's settings (declared on :class:`~abstractvision.server.settings.ServerConfig`). FastAPI and
uvicorn are imported only when this command runs.
"""

from __future__ import annotations

from typing import Any

import click

from ._errors import reports_errors
from ._options import backend_options, pop_backend_flags, pop_setting_options, setting_options
from ._session import BackendSession

_PREFIX = "server_"

#: Backend settings that name the model, in the order a served model id is taken from them.
_MODEL_SETTINGS = ("model_id", "model", "diffusion_model")


def _server_config_class() -> type:
    from ..server.settings import ServerConfig

    return ServerConfig


@click.command("serve", help="Serve the backend over HTTP: OpenAI's Images API, jobs with progress and cancel.")
@backend_options(renamed={"api_key": "--upstream-api-key"})
@setting_options(_server_config_class(), _PREFIX)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log level; the access log (info) has one line per request, never a key or a prompt.",
)
@reports_errors
def serve(log_level: str, **values: Any) -> None:
    from ..backends import optional_dependency

    with optional_dependency("server", "abstractvision serve"):
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401

    from ..server.app import serve_app

    app, config, banner = served_app(values)
    click.echo(banner, err=True)
    _configure_logging(log_level)
    serve_app(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        access_log=False,  # ours logs one line per request, without keys or prompts
        # the jobs get grace_s from the signal; then their sync requests answer, then connections close
        timeout_graceful_shutdown=int(config.grace_s) + 5,
    )


def served_app(values: dict[str, Any]) -> tuple[Any, Any, str]:
    """(the app, its :class:`ServerConfig`, the startup line) for ``serve``'s parsed parameters.

    Why apart from the command: it is everything ``serve`` does before it listens (settings
    resolved, exposure checked, backend built), so tests can check what a flag reaches without a socket.
    """
    from ..config import resolve
    from ..server.app import create_app_for_backend

    values = dict(values)
    config = resolve(_server_config_class(), **pop_setting_options(values, _server_config_class(), _PREFIX)).build()
    config.check_exposure()
    session = BackendSession(pop_backend_flags(values))
    model_id = config.served_model_name or served_model_id(session) or session.provider
    app = create_app_for_backend(config, session.backend, model_id=model_id, backend_name=session.provider)
    keys = f"{len(config.api_keys)} API key(s) required" if config.api_keys else "no API keys"
    banner = (
        f"abstractvision serve: http://{_url_host(config.host)}:{config.port}  model {model_id} "
        f"({session.provider})  {keys}  store {config.store_path()}"
    )
    return app, config, banner


def served_model_id(session: BackendSession) -> str | None:
    """The backend's model setting as a model id: a model file's stem, a repo id as it is."""
    resolved = session.resolved
    if resolved is None:
        return None
    for name in _MODEL_SETTINGS:
        try:
            value = resolved.value(name)
        except KeyError:
            continue
        if value:
            from ..server.settings import model_label

            return model_label(value)
    return None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level.upper())
    logging.getLogger("abstractvision").setLevel(level.upper())


__all__ = ["serve", "served_app", "served_model_id"]
