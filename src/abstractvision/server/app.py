"""The FastAPI application: routes, error handlers, middleware and the service's lifetime.

:func:`create_app` takes a ready :class:`ImageService`; :func:`create_app_for_backend` builds one
over a backend (what ``abstractvision serve`` does). Every error leaves as OpenAI's error object.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import AbstractVisionError
from .errors import APIError, error_body, error_object
from .middleware import AccessLogMiddleware, BodyLimitMiddleware, KeyCheckMiddleware
from .playground import mount_playground
from .runner import LocalRunner
from .service import ImageService
from .settings import ServerConfig

log = logging.getLogger("abstractvision.server")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable", 415: "unsupported_media_type"}


def create_app(svc: ImageService) -> FastAPI:
    """The ASGI app over ``svc``; starting it recovers job records and (with ``preload``) loads the model."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await svc.start()
        try:
            yield
        finally:
            await svc.stop()

    app = FastAPI(
        title="abstractvision",
        version=__version__,
        summary="OpenAI-compatible image and video generation over any abstractvision backend.",
        lifespan=lifespan,
    )
    app.state.service = svc
    from . import routes_images, routes_jobs, routes_meta, routes_videos

    for module in (routes_images, routes_jobs, routes_videos, routes_meta):
        app.include_router(module.router)
    mount_playground(app)
    _add_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=svc.config.body_limit_bytes)
    app.add_middleware(KeyCheckMiddleware, keys=svc.keys)  # outside the body limit: a 401 before a 413
    app.add_middleware(AccessLogMiddleware)
    return app


def create_app_for_backend(
    config: ServerConfig, backend: Any, *, model_id: str | None = None, backend_name: str | None = None
) -> FastAPI:
    """The app serving ``backend`` (a :class:`~abstractvision.backends.VisionBackend`)."""
    from ..vision_manager import VisionManager

    name = backend_name or backend.name
    runner = LocalRunner(
        VisionManager(backend=backend), config.served_model_name or model_id or name, preload=config.preload
    )
    return create_app(ImageService(config, runner, backend_name=name, local_engine=name != "openai"))


def serve_app(app: FastAPI, **uvicorn_options: Any) -> None:
    """Run ``app`` with uvicorn, telling its service at once when a stop signal (SIGTERM, Ctrl-C) comes.

    Why: uvicorn runs the app's shutdown only once its open connections have ended (sync requests
    waiting for their jobs, event streams); until then the workers would keep starting queued jobs,
    which must stay queued for the restart, and the running job's grace period would not have begun.
    """
    import uvicorn

    svc: ImageService = app.state.service

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            svc.begin_shutdown()
            super().handle_exit(sig, frame)

    _Server(uvicorn.Config(app, **uvicorn_options)).run()


def _json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AbstractVisionError)
    async def library_error(request: Request, exc: AbstractVisionError) -> JSONResponse:
        status, body = error_object(exc)
        return _json_error(status, body, exc.headers if isinstance(exc, APIError) else None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = (exc.errors() or [{}])[0]
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":  # its location is a character offset, not a field
            error = (first.get("ctx") or {}).get("error")
            message, param = f"body: not valid JSON ({error or message})", None
        else:
            location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
            param = ".".join(location) or None
            message = f"{param or 'body'}: {message}"
        return _json_error(400, error_body(message, "invalid_request_error", param, "invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _json_error(
            exc.status_code,
            error_body(str(exc.detail), "invalid_request_error", None, code),
            getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s: unexpected %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return _json_error(*error_object(exc))


__all__ = ["create_app", "create_app_for_backend", "serve_app"]
