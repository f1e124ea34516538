"""What every ``/v1`` route depends on: the service, and the caller as an owner id."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .service import ImageService

_bearer = HTTPBearer(auto_error=False, description="A key given to `abstractvision serve --api-key`.")


def service(request: Request) -> ImageService:
    return request.app.state.service


def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    """The owner id of the caller (401 when keys are required and none or a wrong one was sent)."""
    owner = request.app.state.service.keys.owner(credentials.credentials if credentials else None)
    request.state.owner = owner
    return owner


__all__ = ["caller", "service"]
