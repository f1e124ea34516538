"""The job API: submit, poll, follow events, cancel, list. The same jobs the Images routes make."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from .deps import caller, service
from .errors import APIError
from .jobs import Job
from .requests import build_submission, check_upscale_pixels, decode_base64_image
from .routes_common import ERROR_RESPONSES, check_input_image
from .schemas import JobBody, JobList, JobView
from .service import ImageService
from .sse import HEADERS, KEEPALIVE, listen, sse_event

router = APIRouter(tags=["jobs"])

#: Body fields that carry base64 images -> the manager field they fill.
_IMAGE_BODY_FIELDS = {"image": "image", "mask": "mask", "reference_image": "reference_image"}


@router.post("/v1/jobs", status_code=202, response_model=JobView, responses=ERROR_RESPONSES)
async def create_job(
    body: JobBody, request: Request, owner: str = Depends(caller), svc: ImageService = Depends(service)
) -> Any:
    data = body.model_dump(exclude_none=True)
    submission = build_submission(
        body.task, data, svc.config, svc.model_ids, passthrough_openai_fields=svc.backend_name == "openai"
    )
    for key, target in _IMAGE_BODY_FIELDS.items():
        if key in data:
            submission.inputs[target] = check_input_image(decode_base64_image(data[key], key), key, svc.config)
    if data.get("images"):
        submission.inputs["reference_images"] = [
            check_input_image(decode_base64_image(item, "images"), "images", svc.config) for item in data["images"]
        ]
    check_upscale_pixels(submission, svc.config)
    job = await svc.submit(owner, submission)
    request.state.job_id = job.id  # for the access log
    view = svc.queue.view(job.id, owner)
    return JSONResponse(view, status_code=202, headers={"Location": view["poll_url"]})


@router.get("/v1/jobs", response_model=JobList, responses=ERROR_RESPONSES)
async def list_jobs(owner: str = Depends(caller), svc: ImageService = Depends(service)) -> Any:
    ids = [record["id"] for record in svc.records.list(owner)]
    return {"object": "list", "data": [view for view in (svc.queue.view(i, owner) for i in ids) if view]}


@router.get("/v1/jobs/{job_id}", response_model=JobView, responses=ERROR_RESPONSES)
async def get_job(job_id: str, owner: str = Depends(caller), svc: ImageService = Depends(service)) -> Any:
    return _view_or_404(svc, job_id, owner)


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobView, responses=ERROR_RESPONSES)
async def cancel_job(job_id: str, owner: str = Depends(caller), svc: ImageService = Depends(service)) -> Any:
    _view_or_404(svc, job_id, owner)
    job = svc.queue.live(job_id)
    if job is not None:
        svc.queue.cancel(job)
        if job.status == "running":  # answer once the engine has stopped, or say it is stopping
            try:
                await asyncio.wait_for(job.done.wait(), timeout=5)
            except asyncio.TimeoutError:
                pass
    return _view_or_404(svc, job_id, owner)


@router.get(
    "/v1/jobs/{job_id}/events",
    responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
async def job_events(job_id: str, owner: str = Depends(caller), svc: ImageService = Depends(service)) -> Any:
    view = _view_or_404(svc, job_id, owner)
    job = svc.queue.live(job_id)
    return StreamingResponse(_events(svc, job, view), media_type="text/event-stream", headers=HEADERS)


async def _events(svc: ImageService, job: Job | None, view: dict[str, Any]) -> AsyncIterator[bytes]:
    if job is None:  # finished (or from before a restart): its final state is the whole story
        yield sse_event({"type": view["status"], "job_id": view["id"], **_final_fields(view)})
        return
    listener = svc.queue.subscribe(job)
    try:
        async for event in listen(listener):
            yield KEEPALIVE if event is None else sse_event(event)
    finally:
        job.listeners.discard(listener)


def _final_fields(view: dict[str, Any]) -> dict[str, Any]:
    return {key: view[key] for key in ("status", "result", "error") if key in view}


def _view_or_404(svc: ImageService, job_id: str, owner: str) -> dict[str, Any]:
    view = svc.queue.view(job_id, owner)
    if view is None:
        raise APIError(404, f"job {job_id!r} not found", param="job_id", code="not_found")
    return view


__all__ = ["router"]
