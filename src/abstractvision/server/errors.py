"""Every failure as OpenAI's error object, with the status a client can act on.

OpenAI's SDKs raise typed exceptions from the status (400 ``BadRequestError``, 401, 404, 429
``RateLimitError``...) and show ``error.message``; so the library's typed errors map to statuses
here, in one table, and the message is the library's own (it names the field or the fix).
Unexpected exceptions become a 500 that says nothing about the server's insides.
"""

from __future__ import annotations

from typing import Any

from .. import errors as e
from ..redaction import redact_urls_in

#: Library error -> (HTTP status, OpenAI error type, code). First match wins, so subclasses first.
_STATUS: tuple[tuple[type[BaseException], int, str, str | None], ...] = (
    (e.InvalidRequestError, 400, "invalid_request_error", None),
    (e.CapabilityNotSupportedError, 400, "invalid_request_error", "unsupported"),
    (e.UnknownModelError, 404, "invalid_request_error", "model_not_found"),
    (e.ModelNotAvailableError, 404, "invalid_request_error", "model_not_found"),
    (e.AdapterNotAvailableError, 404, "invalid_request_error", "adapter_not_found"),
    (e.ArtifactNotFoundError, 404, "invalid_request_error", "not_found"),
    (e.RateLimitError, 429, "rate_limit_error", "upstream_rate_limited"),
    (e.ProviderConnectionError, 502, "server_error", "upstream_unreachable"),
    (e.ProviderError, 502, "server_error", "upstream_error"),
    (e.RequestTimeoutError, 504, "server_error", "timeout"),
    (e.GenerationCancelledError, 499, "cancelled", "cancelled"),
    (e.EngineError, 500, "server_error", "engine_error"),
    (e.OptionalDependencyMissingError, 500, "server_error", "engine_missing"),
    (e.BackendNotConfiguredError, 500, "server_error", "backend_not_configured"),
    (e.AbstractVisionError, 500, "server_error", None),
)


class APIError(e.AbstractVisionError):
    """An error the server itself raises (auth, limits, not found): status, message, type, param, code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "type": type, "param": param, "code": code}
        self.headers = headers or {}


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"message": redact_urls_in(message), "type": type, "param": param, "code": code}


def error_object(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, OpenAI error dict) for any exception."""
    if isinstance(exc, APIError):  # before the table: it is an AbstractVisionError too
        return exc.status, exc.body
    for kind, status, type_, code in _STATUS:
        if isinstance(exc, kind):
            param = getattr(exc, "field", None)
            return status, error_body(" ".join(str(exc).split()) or type(exc).__name__, type_, param, code)
    return 500, error_body("internal server error (see the server log)", "server_error", None, "internal_error")


def not_found(what: str) -> APIError:
    return APIError(404, f"{what} not found", code="not_found")


__all__ = ["APIError", "error_body", "error_object", "not_found"]
