"""OpenAI's Videos API over the job queue: create, poll, download.

A video is a job (``text_to_video``, or ``image_to_video`` with an ``input_reference``); these
routes show it in OpenAI's ``video`` shape. Where the backend has no video task, creating one is
a 400 that says so (the capability check of the manager).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from .deps import caller, service
from .errors import APIError
from .routes_common import ERROR_RESPONSES, read_upload
from .routes_images import svc_submission
from .schemas import VideoBody, VideoForm, VideoObject
from .service import ImageService

router = APIRouter(tags=["videos"])

#: job status -> OpenAI video status
_VIDEO_STATUS = {"queued": "queued", "running": "in_progress", "completed": "completed"}


#: The body is read by hand (JSON or multipart, as OpenAI's SDK sends either), so it is declared here.
_VIDEO_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": VideoBody.model_json_schema()},
            "multipart/form-data": {"schema": VideoForm.model_json_schema()},
        },
    }
}


@router.post("/v1/videos", response_model=VideoObject, responses=ERROR_RESPONSES, openapi_extra=_VIDEO_BODY)
async def create_video(
    request: Request,
    owner: str = Depends(caller),
    svc: ImageService = Depends(service),
) -> Any:
    form = await _video_form(request)
    fields = form.model_dump(exclude_none=True, exclude={"input_reference"})
    seconds = fields.pop("seconds", None)
    if seconds is not None:
        fields.setdefault("extra", {})["seconds"] = _seconds(seconds)
    task = "image_to_video" if form.input_reference is not None else "text_to_video"
    submission = svc_submission(svc, task, fields)
    if form.input_reference is not None:
        submission.inputs["image"] = await read_upload(form.input_reference, "input_reference", svc.config)
    job = await svc.submit(owner, submission)
    request.state.job_id = job.id  # for the access log
    return video_object(svc.queue.view(job.id, owner), job.request)


@router.get("/v1/videos/{video_id}", response_model=VideoObject, responses=ERROR_RESPONSES)
async def get_video(video_id: str, owner: str = Depends(caller), svc: ImageService = Depends(service)) -> Any:
    view = _video_view(svc, video_id, owner)
    job = svc.queue.live(video_id)
    request = job.request if job is not None else (svc.records.get(video_id) or {}).get("request") or {}
    return video_object(view, request)


@router.get(
    "/v1/videos/{video_id}/content",
    responses={**ERROR_RESPONSES, 200: {"content": {"video/mp4": {}}, "description": "The video file."}},
    response_class=Response,
)
async def video_content(video_id: str, owner: str = Depends(caller), svc: ImageService = Depends(service)) -> Any:
    view = _video_view(svc, video_id, owner)
    if view["status"] != "completed" or not view.get("result"):
        raise APIError(
            404, f"video {video_id!r} is {view['status']}, not completed", param="video_id", code="not_ready"
        )
    data, content_type = svc.file_for(view["result"][0]["file_id"], owner)
    return Response(data, media_type=content_type)


async def _video_form(request: Request) -> VideoForm:
    """The body as JSON or multipart (the SDK sends multipart when there is an ``input_reference``)."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    try:
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await request.form()
            return VideoForm.model_validate({k: form.getlist(k)[-1] for k in form.keys()})
        return VideoForm.model_validate(await request.json())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    except ValueError:
        raise APIError(400, "body: expected JSON or multipart form data", param="body") from None


def _seconds(value: Any) -> float | int:
    """A clip length as a number; a whole one as an int, which OpenAI's video models take as ``"4"``."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise APIError(400, f"seconds: expected a number, got {value!r}", param="seconds") from None
    if not 0 < seconds <= 600:
        raise APIError(400, "seconds: must be between 0 and 600", param="seconds")
    return int(seconds) if seconds.is_integer() else seconds


def _video_view(svc: ImageService, video_id: str, owner: str) -> dict[str, Any]:
    view = svc.queue.view(video_id, owner)
    if view is None or view["task"] not in ("text_to_video", "image_to_video"):
        raise APIError(404, f"video {video_id!r} not found", param="video_id", code="not_found")
    return view


def video_object(view: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """A job view in OpenAI's ``video`` shape; ``request`` (the job's) gives its size and length."""
    seconds = (request.get("fields") or {}).get("extra", {}).get("seconds")
    progress = view.get("progress") or {}
    step, total = progress.get("step"), progress.get("total")
    status = _VIDEO_STATUS.get(view["status"], "failed")
    percent = 100 if status == "completed" else int(100 * step / total) if step and total else 0
    body: dict[str, Any] = {
        "id": view["id"],
        "object": "video",
        "created_at": view["created"],
        "status": status,
        "model": request.get("model"),
        "progress": percent,
        "seconds": None if seconds is None else str(seconds),
        "size": request.get("size"),
    }
    if status == "failed":
        body["error"] = view.get("error") or {"message": f"the job was {view['status']}", "type": "server_error"}
    return body


__all__ = ["router", "video_object"]
