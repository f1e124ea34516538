"""stable-diffusion.cpp sd-server's native job API (``/sdcpp/v1``): submit, poll with progress, cancel the job.

Why: sd-server's OpenAI endpoints are one synchronous request with no progress, and a client that
gives up does not stop the server (measured on 0.4.5: the abandoned generation runs on and the next
request waits for it). Newer sd-servers add a native async API (upstream ``examples/server/api.md``):
``POST /sdcpp/v1/img_gen`` answers ``202`` with a job ``id`` and ``poll_url``; ``GET
/sdcpp/v1/jobs/{id}`` gives ``status`` (``queued``, ``generating``, ``completed``, ``failed``,
``cancelled``), ``queue_position`` and, when done, ``result.images[].b64_json``; ``POST
/sdcpp/v1/jobs/{id}/cancel`` stops a queued or running job. The body is the native schema: steps,
sampler and guidance live under ``sample_params``.

**sd-server 0.4.5 (the PyPI build this project tests with) has none of it**: this path is used only
when ``GET /sdcpp/v1/capabilities`` answers, and it is tested against a loopback fake of that API. The
per-step ``progress`` object (``{"step": k, "steps": n}``) is read when a server sends one; the upstream
job shape documents no such field, so without it only the status and queue position are reported.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import (
    AbstractVisionError,
    GenerationCancelledError,
    InvalidProviderResponseError,
    ProviderError,
    RequestTimeoutError,
)
from ..progress import ProgressReporter
from ._http import HttpCall, Wait
from ._openai_shapes import json_body

SUBMIT_PATH = "/sdcpp/v1/img_gen"
JOBS_PATH = "/sdcpp/v1/jobs"
PENDING = ("queued", "generating")

#: Generic field -> key under ``sample_params`` of the native body.
_SAMPLE_KEYS = {"steps": "sample_steps", "sampler": "sample_method", "scheduler": "scheduler"}
#: Generic fields the native body does not take (the size becomes width/height, ``n`` batch_count).
_NOT_NATIVE = ("model", "response_format", "size", "width", "height", "n")


def native_body(fields: dict[str, Any], image_b64: str | None = None, mask_b64: str | None = None) -> dict[str, Any]:
    """The ``img_gen`` body for the generic-shaped ``fields`` (and an edit's image and mask)."""
    body: dict[str, Any] = {}
    sample: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _SAMPLE_KEYS:
            sample[_SAMPLE_KEYS[name]] = value
        elif name == "guidance_scale":
            sample["guidance"] = {"txt_cfg": value}
        elif name not in _NOT_NATIVE:
            body[name] = value  # prompt, negative_prompt, seed, strength, output_format, other extras
    size = str(fields.get("size") or "")
    width, _, height = size.partition("x")
    if width.isdigit() and height.isdigit():
        body["width"], body["height"] = int(width), int(height)
    if fields.get("n"):
        body["batch_count"] = fields["n"]
    if sample:
        body["sample_params"] = sample
    if image_b64 is not None:
        body["init_image"] = image_b64
    if mask_b64 is not None:
        body["mask_image"] = mask_b64
    return body


def _job(value: Any, source: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise InvalidProviderResponseError(f"{source} answered without a job id: {str(value)[:300]!r}", status=200)
    return value


def _report(reporter: ProgressReporter, job: dict[str, Any]) -> None:
    progress = job.get("progress") if isinstance(job.get("progress"), dict) else {}
    step, steps = progress.get("step"), progress.get("steps")
    step = step if isinstance(step, int) and not isinstance(step, bool) else None
    steps = steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else None
    where = f" (queue position {job['queue_position']})" if job.get("status") == "queued" else ""
    reporter.report("step", step=step, total_steps=steps, message=f"sd-server job {job['id']} {job['status']}{where}")


def run_job(root: str, body: dict[str, Any], reporter: ProgressReporter, poll_interval_s: float, job_timeout_s: float):
    """Submit ``body``, poll until the job ends, and return ``(payload as data[], last response, job id, seconds)``.

    A cancel from the caller, or ``job_timeout_s`` passing, first tells the server to cancel the job.
    """
    submitted = yield HttpCall("POST", f"{root}{SUBMIT_PATH}", json=json_body(body))
    job = _job(submitted.json(), submitted.url)
    job_id = job["id"]
    poll_url = job.get("poll_url")
    if not (isinstance(poll_url, str) and poll_url.startswith("/") and not poll_url.startswith("//")):
        poll_url = f"{JOBS_PATH}/{job_id}"  # only a path on the same server is followed
    started, response = time.monotonic(), submitted
    try:
        while job.get("status") in PENDING:
            _report(reporter, job)
            if time.monotonic() - started >= job_timeout_s:
                raise RequestTimeoutError(
                    f"sd-server job {job_id} was still {job['status']} after job_timeout_s={job_timeout_s}",
                    timeout_s=job_timeout_s,
                )
            yield Wait(poll_interval_s)
            response = yield HttpCall("GET", f"{root}{poll_url}")
            job = {"id": job_id, **_job(response.json(), response.url)}
    except (GenerationCancelledError, RequestTimeoutError):
        try:
            yield HttpCall("POST", f"{root}{JOBS_PATH}/{job_id}/cancel", after_cancel=True)
        except AbstractVisionError:
            pass  # it ended meanwhile (409/410) or the server is gone: the caller's error is what matters
        raise
    if job.get("status") != "completed":
        error = job.get("error") if isinstance(job.get("error"), dict) else {}
        message = error.get("message") or error.get("code") or "no reason given"
        raise ProviderError(
            f"sd-server job {job_id} ended {job.get('status')!r}: {message}", provider_message=message, status=None
        )
    result = job.get("result") if isinstance(job.get("result"), dict) else {}
    images = result.get("images")
    if not isinstance(images, list) or not images:
        raise InvalidProviderResponseError(f"{response.url}: completed job {job_id} has no images", status=200)
    payload = {"data": [{"b64_json": item.get("b64_json") if isinstance(item, dict) else None} for item in images]}
    return payload, response, job_id, round(time.monotonic() - started, 3)


__all__ = ["JOBS_PATH", "SUBMIT_PATH", "native_body", "run_job"]
