"""Clients that hang up on purpose, and waits with deadlines, for the load, fault and persistence tests.

A sync request's job has no id in its answer, so these tests find it in ``GET /v1/jobs`` (the
caller's jobs) as the one they did not know before. Every wait has a deadline and fails with what
it last saw, so a regression fails instead of hanging.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx


def raw_post(url: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> socket.socket:
    """Send a JSON POST on a bare socket and return the socket unread: closing it is the client hanging up."""
    parts = urlsplit(url)
    data = json.dumps(body).encode()
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    return sock


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 10.0, every_s: float = 0.02) -> Any:
    """``check()``'s first truthy value, polled until ``timeout_s``; an AssertionError naming ``what`` after."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def jobs(base_url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    reply = httpx.get(f"{base_url}/jobs", headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def job(base_url: str, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    reply = httpx.get(f"{base_url}/jobs/{job_id}", headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def submit(base_url: str, headers: dict[str, str] | None = None, **fields: Any) -> str:
    """``POST /v1/jobs`` (text to image); the new job's id."""
    reply = httpx.post(f"{base_url}/jobs", json={"task": "text_to_image", **fields}, headers=headers, timeout=10)
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


def new_job(
    base_url: str,
    known: set[str],
    status: str | None = None,
    timeout_s: float = 10.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The one job not in ``known`` (a sync request's), once it is in ``status`` (any if ``None``)."""

    def found() -> dict[str, Any] | None:
        fresh = [view for view in jobs(base_url, headers) if view["id"] not in known]
        assert len(fresh) <= 1, f"expected one new job, found {fresh}"
        return fresh[0] if fresh and (status is None or fresh[0]["status"] == status) else None

    return wait_for(found, f"a new job with status {status}", timeout_s)


def wait_status(base_url: str, job_id: str, status: str, timeout_s: float = 10.0, **kw: Any) -> dict[str, Any]:
    return wait_for(
        lambda: (view := job(base_url, job_id, **kw))["status"] == status and view,
        f"job {job_id} to be {status}",
        timeout_s,
    )


def wait_step(
    base_url: str, job_id: str, step: int = 1, timeout_s: float = 10.0, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The job's view once it runs and has reported ``step``."""

    def reached() -> dict[str, Any] | None:
        view = job(base_url, job_id, headers)
        assert view["status"] in ("queued", "running"), view
        return view if (view["progress"]["step"] or 0) >= step else None

    return wait_for(reached, f"job {job_id} to reach step {step}", timeout_s)
