"""What is served and whether it is up: models, adapters, capabilities, files, health and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from ..backends._openai_dialects import ABSTRACTVISION_OWNER
from .adapters import adapter_entry
from .deps import caller, service
from .requests import served_model
from .routes_common import ERROR_RESPONSES
from .schemas import AdapterList, Capabilities, Health, ModelList
from .service import ImageService

router = APIRouter()

#: What a stored result can be: the image output formats, and videos.
_FILE_TYPES = {mime: {} for mime in ("image/png", "image/jpeg", "image/webp", "video/mp4")}

#: Square sizes offered as presets, filtered by the backend's limits.
_PRESET_SIZES = (256, 512, 768, 1024, 1536, 2048)


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES, tags=["models"])
async def list_models(_: str = Depends(caller), svc: ImageService = Depends(service)) -> Any:
    entries = [
        {
            "id": model,
            "object": "model",
            "created": int(svc.started_at),
            "owned_by": f"{ABSTRACTVISION_OWNER}{svc.backend_name}",  # how an abstractvision client recognises us
            "tasks": list(svc.runner.capabilities(model).supported_tasks),
        }
        for model in svc.model_ids
    ]
    return {"object": "list", "data": entries}


@router.get("/v1/adapters", response_model=AdapterList, responses=ERROR_RESPONSES, tags=["models"])
async def list_adapters(
    model: str | None = Query(None, max_length=512, description="A served model id (default: the default model)."),
    _: str = Depends(caller),
    svc: ImageService = Depends(service),
) -> Any:
    """The LoRA adapters requests may name in ``lora`` (by ``id``): the backend's own list, the only
    ones this server accepts."""
    infos = await svc.runner.adapters(served_model(model, svc.model_ids))
    return {"object": "list", "data": [adapter_entry(info) for info in infos]}


@router.get("/v1/capabilities", response_model=Capabilities, responses=ERROR_RESPONSES, tags=["models"])
async def capabilities(_: str = Depends(caller), svc: ImageService = Depends(service)) -> Any:
    return describe_capabilities(svc)


def describe_capabilities(svc: ImageService) -> dict[str, Any]:
    caps = svc.runner.capabilities()
    config = svc.config
    max_w, max_h = caps.max_width, caps.max_height
    sizes = [
        f"{side}x{side}"
        for side in _PRESET_SIZES
        if side * side <= config.max_pixels and (max_w is None or side <= max_w) and (max_h is None or side <= max_h)
    ]
    return {
        "backend": svc.backend_name,
        "model": svc.model_id,
        "tasks": list(caps.supported_tasks),
        "limits": {
            "sizes": sizes,
            "max_width": max_w,
            "max_height": max_h,
            "max_pixels": config.max_pixels,
            "max_n": config.max_n,
            "max_queue": config.max_queue,
            "max_body_bytes": config.body_limit_bytes,
        },
        "features": {
            "cancel_queued": True,
            "cancel_running": caps.cancels_running,
            "stream": True,
            "jobs": True,
            "mask": caps.supports_mask,
            "previews": caps.previews,
            "lora": caps.supports_lora,
        },
        "auth_required": svc.keys.required,
    }


@router.get(
    "/v1/files/{file_id}",
    response_class=Response,
    responses={**ERROR_RESPONSES, 200: {"content": _FILE_TYPES, "description": "The file."}},
    tags=["files"],
)
async def get_file(file_id: str, owner: str = Depends(caller), svc: ImageService = Depends(service)) -> Response:
    data, content_type = svc.file_for(file_id, owner)
    return Response(data, media_type=content_type, headers={"Cache-Control": "private, max-age=31536000, immutable"})


@router.get("/healthz", response_model=Health, tags=["health"])
async def healthz() -> Any:
    return {"status": "ok"}


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}}, tags=["health"])
async def readyz(svc: ImageService = Depends(service)) -> Any:
    reason = svc.not_ready_reason
    if reason is None and not svc.queue.accepting:
        reason = "shutting down"
    if reason is None and svc.queue.full:
        reason = f"the queue is full ({svc.config.max_queue} jobs waiting)"
    if reason is not None:
        return JSONResponse({"status": "unavailable", "detail": reason}, status_code=503)
    return {"status": "ready"}


__all__ = ["describe_capabilities", "router"]
