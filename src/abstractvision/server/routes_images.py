"""OpenAI's Images API: ``POST /v1/images/generations`` and ``POST /v1/images/edits``, plus
``POST /v1/images/upscale`` (this server's: multipart like edits, answered like both).

All are jobs underneath (same queue, cancel and records); the route waits for its job and a
client that hangs up cancels it. ``stream: true`` answers with OpenAI's image streaming events
(``image_generation.partial_image`` from the backend's previews, then ``image_generation.completed``
per image), which the official SDK's ``stream=True`` reads.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import StreamingResponse

from ..backends.base_backend import UPSCALE_TASK
from .deps import caller, service
from .errors import APIError
from .jobs import Job
from .outputs import response_item
from .requests import Submission, build_submission, check_upscale_pixels
from .routes_common import ERROR_RESPONSES, read_upload
from .schemas import ImageEditForm, ImageGenerationBody, ImagesResponse, ImageUpscaleForm
from .service import ImageService
from .sse import HEADERS, KEEPALIVE, listen, sse_event

router = APIRouter(tags=["images"])

_SSE_RESPONSE = {200: {"content": {"text/event-stream": {}}, "description": "With stream: true."}}


@router.post(
    "/v1/images/generations",
    response_model=ImagesResponse,
    response_model_exclude_unset=True,  # an item has b64_json or url, as OpenAI's: never the other as null
    responses={**ERROR_RESPONSES, **_SSE_RESPONSE},
)
async def create_image(
    body: ImageGenerationBody,
    request: Request,
    owner: str = Depends(caller),
    svc: ImageService = Depends(service),
) -> Any:
    submission = svc_submission(svc, "text_to_image", body.model_dump(exclude_none=True))
    return await _answer(svc, request, owner, submission, body.stream, body.partial_images)


@router.post(
    "/v1/images/edits",
    response_model=ImagesResponse,
    response_model_exclude_unset=True,
    responses={**ERROR_RESPONSES, **_SSE_RESPONSE},
)
async def edit_image(
    form: Annotated[ImageEditForm, Form(media_type="multipart/form-data")],
    request: Request,
    owner: str = Depends(caller),
    svc: ImageService = Depends(service),
) -> Any:
    uploads = [*(form.image or ()), *(form.image_array or ())]
    if not uploads:
        raise APIError(400, "image: an image file is required (field 'image' or 'image[]')", param="image")
    fields = form.model_dump(exclude_none=True, exclude={"image", "image_array", "mask", "lora_array"})
    if form.lora_array:
        fields["lora"] = [*(form.lora or ()), *form.lora_array]
    submission = svc_submission(svc, "image_to_image", fields)
    images = [await read_upload(upload, "image", svc.config) for upload in uploads]
    submission.inputs["image"] = images[0]
    if len(images) > 1:
        submission.inputs["reference_images"] = images[1:]
    if form.mask is not None:
        submission.inputs["mask"] = await read_upload(form.mask, "mask", svc.config)
    return await _answer(svc, request, owner, submission, form.stream, form.partial_images)


@router.post(
    "/v1/images/upscale",
    response_model=ImagesResponse,
    response_model_exclude_unset=True,
    responses=ERROR_RESPONSES,
)
async def upscale_image(
    form: Annotated[ImageUpscaleForm, Form(media_type="multipart/form-data")],
    request: Request,
    owner: str = Depends(caller),
    svc: ImageService = Depends(service),
) -> Any:
    """Upscale ``image`` by ``scale`` or to ``size`` (the backend needs an upscaler configured)."""
    if form.image is None:
        raise APIError(400, "image: an image file is required (field 'image')", param="image")
    submission = svc_submission(svc, UPSCALE_TASK, form.model_dump(exclude_none=True, exclude={"image"}))
    submission.inputs["image"] = await read_upload(form.image, "image", svc.config)
    check_upscale_pixels(submission, svc.config)
    return await _answer(svc, request, owner, submission, stream=False, partials=None)


def svc_submission(svc: ImageService, task: str, body: dict[str, Any]) -> Submission:
    return build_submission(
        task, body, svc.config, svc.model_ids, passthrough_openai_fields=svc.backend_name == "openai"
    )


async def _answer(
    svc: ImageService, request: Request, owner: str, submission: Submission, stream: bool | None, partials: int | None
) -> Any:
    job = await svc.submit(owner, submission)
    request.state.job_id = job.id  # for the access log
    base_url = str(request.base_url)
    if stream:
        events = _stream(svc, job, submission, partials or 0, base_url)
        return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)
    await svc.wait(job, request.receive)
    items = svc.outcome(job)
    return images_body(svc, items, submission, base_url)


def images_body(svc: ImageService, items: list[dict[str, Any]], submission: Submission, base_url: str) -> dict:
    body = {
        "created": int(time.time()),
        "data": [response_item(svc.store, item, submission.response_format, base_url) for item in items],
        "output_format": submission.request.get("output_format") or "png",
    }
    if submission.request.get("size"):
        body["size"] = submission.request["size"]
    return body


async def _stream(
    svc: ImageService, job: Job, submission: Submission, partials: int, base_url: str
) -> AsyncIterator[bytes]:
    """OpenAI's image stream for one job; a client that leaves cancels the job."""
    listener = svc.queue.subscribe(job)
    prefix = "image_edit" if job.task == "image_to_image" else "image_generation"
    common = {
        "background": "auto",
        "quality": "auto",
        "output_format": submission.request.get("output_format") or "png",
    }
    sent = 0
    try:
        async for event in listen(listener):
            if event is None:
                yield KEEPALIVE
            elif event["type"] == "preview" and sent < partials:
                yield sse_event(
                    {
                        "type": f"{prefix}.partial_image",
                        "b64_json": event["b64_json"],
                        "partial_image_index": sent,
                        "created_at": int(time.time()),
                        "size": submission.request.get("size") or "auto",
                        **common,
                    }
                )
                sent += 1
        if job.status != "completed":
            yield sse_event({"type": "error", "error": svc.failure(job).body})
            return
        for item in job.result or []:
            entry = response_item(svc.store, item, "b64_json", base_url)
            size = _size_of(item)
            yield sse_event(
                {
                    "type": f"{prefix}.completed",
                    "created_at": int(time.time()),
                    "size": size,
                    **common,
                    **entry,
                    "usage": _NO_USAGE,
                }
            )
    finally:
        if not job.done.is_set():
            svc.queue.cancel(job)


def _size_of(item: dict[str, Any]) -> str:
    meta = item.get("metadata") or {}
    width, height = meta.get("width"), meta.get("height")
    return f"{width}x{height}" if width and height else "auto"


#: OpenAI's completed event carries token usage; local engines have none to report.
_NO_USAGE = {
    "input_tokens": 0,
    "output_tokens": 0,
    "total_tokens": 0,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
}

__all__ = ["images_body", "router", "svc_submission"]
