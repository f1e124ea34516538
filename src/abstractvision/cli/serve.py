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
_RAY_PREFIX = "ray_"

#: Backend settings that name the model, in the order a served model id is taken from them.
_MODEL_SETTINGS = ("model_id", "model", "diffusion_model")


def _server_config_class() -> type:
    from ..server.settings import ServerConfig

    return ServerConfig


def _ray_options_class() -> type:
    from ..server.ray_config import RayOptions

    return RayOptions


@click.command("serve", help="Serve the backend over HTTP: OpenAI's Images API, jobs with progress and cancel.")
@backend_options(renamed={"api_key": "--upstream-api-key"}, repeatable=("model",))
@setting_options(_server_config_class(), _PREFIX)
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Run on Ray Serve: engine replicas, autoscaling, several models (pip install 'abstractvision[ray]').",
)
@setting_options(_ray_options_class(), _RAY_PREFIX)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log level; the access log (info) has one line per request, never a key or a prompt.",
)
@reports_errors
def serve(log_level: str, use_ray: bool, **values: Any) -> None:
    from ..backends import optional_dependency

    with optional_dependency("server", "abstractvision serve"):
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401

    if use_ray:
        _configure_logging(log_level)
        _serve_on_ray(values)
        return

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
    ray_given = pop_setting_options(values, _ray_options_class(), _RAY_PREFIX)
    if ray_given:
        names = ", ".join(f"--{name.replace('_', '-')}" for name in ray_given)
        raise click.UsageError(f"{names} only apply with --ray")
    config = resolve(_server_config_class(), **pop_setting_options(values, _server_config_class(), _PREFIX)).build()
    config.check_exposure()
    flags = pop_backend_flags(values)
    models = flags.pop("model", None) or ()
    if len(models) > 1:
        raise click.UsageError("several --model values need --ray (one served model per plain server)")
    session = BackendSession({**flags, "model": models[0] if models else None})
    model_id = config.served_model_name or served_model_id(session) or session.provider
    app = create_app_for_backend(config, session.backend, model_id=model_id, backend_name=session.provider)
    keys = f"{len(config.api_keys)} API key(s) required" if config.api_keys else "no API keys"
    banner = (
        f"abstractvision serve: http://{_url_host(config.host)}:{config.port}  model {model_id} "
        f"({session.provider})  {keys}  store {config.store_path()}"
    )
    return app, config, banner


def _serve_on_ray(values: dict[str, Any]) -> None:
    """``serve --ray``: the same app as the ingress of a Ray Serve application, engines on replicas."""
    import signal
    import threading

    from ..backends import optional_dependency
    from ..config import resolve

    with optional_dependency("ray", "abstractvision serve --ray"):
        import ray
        from ray import serve as ray_serve

    from ..server.ray import APP_NAME, build_application
    from ..server.ray_config import deployment_for

    server = resolve(_server_config_class(), **pop_setting_options(values, _server_config_class(), _PREFIX))
    config = server.build()
    config.check_exposure()
    options = resolve(_ray_options_class(), **pop_setting_options(values, _ray_options_class(), _RAY_PREFIX))
    flags = pop_backend_flags(values)
    models = list(flags.pop("model", None) or ())
    session = BackendSession(flags)
    resolved = session.resolved
    deployment = deployment_for(
        session.provider,
        models,
        dict(resolved.values) if resolved is not None else {},
        dict(server.values),
        dict(options.values),
    )
    address = deployment.ray.address
    # "local" unless told: Ray's own default would join whatever cluster `ray start` left on this machine
    ray.init(address=address or "local", include_dashboard=False, logging_level="warning")
    ray_serve.start(http_options={"host": config.host, "port": config.port})
    ray_serve.run(build_application(deployment), name=APP_NAME, route_prefix="/")
    keys = f"{len(config.api_keys)} API key(s) required" if config.api_keys else "no API keys"
    click.echo(
        f"abstractvision serve --ray: http://{_url_host(config.host)}:{config.port}  models "
        f"{', '.join(deployment.model_ids)} ({session.provider})  replicas {_replicas(deployment)}  {keys}  "
        f"ray {address or 'local'}",
        err=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    # this application only: on a shared cluster, other applications keep running
    ray_serve.delete(APP_NAME)
    ray.shutdown()


def _replicas(deployment: Any) -> str:
    scaling = deployment.ray.autoscaling
    return (
        f"{scaling['min_replicas']}-{scaling['max_replicas']} (autoscaling)"
        if scaling
        else str(deployment.ray.replicas)
    )


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
