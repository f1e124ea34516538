"""What every ``/v1`` route depends on: the service, and the caller as an owner id.

Both are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, and
two thread hops per request for an attribute read and a key hash cost more than the work itself
(about 0.2-0.3 ms of server CPU per request on a 2-core machine, see docs/benchmarks.md).
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .service import ImageService

_bearer = HTTPBearer(auto_error=False, description="A key given to `abstractvision serve --api-key`.")


async def service(request: Request) -> ImageService:
    return request.app.state.service


async def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    """The owner id of the caller (401 when keys are required and none or a wrong one was sent)."""
    owner = request.app.state.service.keys.owner(credentials.credentials if credentials else None)
    request.state.owner = owner
    return owner


__all__ = ["caller", "service"]
