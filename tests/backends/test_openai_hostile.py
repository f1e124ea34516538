"""Deadlines, cancels and secrets held against hostile servers, sync and async, over real sockets.

Each server misbehaves on purpose (drips bytes, never answers, redirects, sends garbage that looks
like a PNG, echoes secrets); each test bounds its own run time so a regression fails, not hangs.
"""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import struct
import threading
import time
import zlib

import pytest

from abstractvision import VisionManager
from abstractvision.backends.base_backend import VisionBackend
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import (
    BackendNotConfiguredError,
    GenerationCancelledError,
    InvalidProviderResponseError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    RequestTimeoutError,
)
from abstractvision.types import ImageEditRequest, ImageGenerationRequest
from fixtures.images import make_png
from fixtures.openai_server import Reply, server_png

GENERATIONS = "/images/generations"
MODES = ["sync", "async"]
PNG = server_png(8, 8)
PAYLOAD = {"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}]}
SHORT_BODY = b'{"data": []}'  # 12 bytes, declared as such


def make_backend(server, http_client=None, **options) -> OpenAICompatibleVisionBackend:
    """A backend for ``server`` (or ``base_url=``), closed when the test ends."""
    options.setdefault("model_id", "sd-local")
    base_url = options.pop("base_url", server.base_url if server else None)
    config = OpenAICompatibleBackendConfig(base_url=base_url, **options)
    backend = OpenAICompatibleVisionBackend(config=config, http_client=http_client)
    return server.track(backend) if server else backend


def generate(manager: VisionManager, mode: str, prompt: str = "a cat", **params):
    """``manager.generate_image`` (sync) or ``agenerate_image`` on a fresh loop, closing its client."""
    if mode == "sync":
        try:
            return manager.generate_image(prompt, **params)
        finally:
            manager.close()

    async def main():
        async with manager.backend:
            return await manager.agenerate_image(prompt, **params)

    return asyncio.run(main())


def raises_within(error_type, call) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(error_type) as info:
        call()
    return info.value, time.monotonic() - started


# ---- 1. timeout_s is a deadline for the whole exchange -------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "reply",
    [Reply(json=PAYLOAD, head_drip_s=0.1), Reply(body=SHORT_BODY, drip_s=0.4)],
    ids=["headers-a-byte-at-a-time", "declared-body-a-byte-at-a-time"],
)
def test_a_server_dripping_bytes_cannot_outlast_timeout_s(openai_server, mode, reply):
    openai_server.enqueue(GENERATIONS, reply)  # each byte comes well within httpx's read timeout
    manager = VisionManager(backend=make_backend(openai_server, timeout_s=1.0))
    error, elapsed = raises_within(RequestTimeoutError, lambda: generate(manager, mode))
    assert elapsed < 1.8, f"took {elapsed:.1f}s with timeout_s=1.0"
    assert error.timeout_s == 1.0 and "timeout_s=1.0" in str(error)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", MODES)
def test_the_result_download_shares_the_deadline_of_its_request(openai_server, mode):
    url = f"{openai_server.origin}/files/slow.png"
    openai_server.enqueue("/files/slow.png", Reply(body=PNG, drip_s=0.05))  # 77 bytes: about 4 s
    openai_server.enqueue(GENERATIONS, Reply(json={"data": [{"url": url}]}, delay_s=0.6))
    manager = VisionManager(backend=make_backend(openai_server, timeout_s=1.0))
    error, elapsed = raises_within(RequestTimeoutError, lambda: generate(manager, mode))
    assert elapsed < 1.6 and "slow.png" in str(error)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", MODES)
def test_retries_share_the_deadline(openai_server, mode):
    busy = Reply(status=503, json={"error": "busy"}, headers={"Retry-After": "0.3"}, delay_s=0.4)
    openai_server.enqueue(GENERATIONS, busy, busy, busy)
    manager = VisionManager(backend=make_backend(openai_server, timeout_s=1.0, max_retries=5))
    _, elapsed = raises_within(RequestTimeoutError, lambda: generate(manager, mode))
    assert elapsed < 1.5
    assert len(openai_server.requests_to(GENERATIONS)) == 2  # the second attempt was cut at the deadline


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", MODES)
def test_a_retry_wait_past_the_deadline_is_not_made(openai_server, mode):
    openai_server.enqueue(
        GENERATIONS, Reply(status=429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "5"})
    )
    manager = VisionManager(backend=make_backend(openai_server, timeout_s=1.0))
    error, elapsed = raises_within(RateLimitError, lambda: generate(manager, mode))
    assert elapsed < 0.8 and error.retry_after == 5.0
    assert "timeout_s=1.0" in str(error) and "slow down" in str(error)
    assert len(openai_server.requests_to(GENERATIONS)) == 1


# ---- 2. credentials go only to the service's own origin --------------------------------------------------
CONFIGURED = {
    "api_key": "sk-origin-secret",
    "organization": "org-7",
    "project": "proj-7",
    "extra_headers": {"api-key": "azure-secret-value", "X-Relay": "relay-7", "User-Agent": "my-gateway-agent"},
}
CREDENTIAL_HEADERS = ("authorization", "api-key", "openai-organization", "openai-project", "x-relay")


def test_a_download_from_another_origin_gets_no_configured_header(openai_server, second_openai_server):
    url = second_openai_server.host_file("elsewhere.png", PNG)
    openai_server.enqueue(GENERATIONS, Reply(json={"data": [{"url": url}]}))
    asset = generate(VisionManager(backend=make_backend(openai_server, **CONFIGURED)), "sync")
    assert asset.mime_type == "image/png"
    service = openai_server.requests_to(GENERATIONS)[0].headers
    assert all(name in service for name in CREDENTIAL_HEADERS) and service["user-agent"] == "my-gateway-agent"
    download = second_openai_server.last.headers
    assert second_openai_server.last.path == "/files/elsewhere.png"
    assert not [name for name in CREDENTIAL_HEADERS if name in download]
    assert download["user-agent"] == "abstractvision"


@pytest.mark.parametrize("mode", MODES)
def test_a_redirect_to_another_host_is_neither_followed_nor_leaks(openai_server, second_openai_server, mode):
    elsewhere = f"{second_openai_server.base_url}/images/generations"
    openai_server.enqueue(GENERATIONS, Reply(status=302, json={}, headers={"Location": elsewhere}))
    manager = VisionManager(backend=make_backend(openai_server, **CONFIGURED))
    error, _ = raises_within(ProviderError, lambda: generate(manager, mode))
    assert error.status == 302 and elsewhere in str(error) and "not followed" in str(error)
    assert second_openai_server.requests == []


def test_a_callers_client_set_to_follow_redirects_does_not_follow_them(openai_server, second_openai_server):
    import httpx

    elsewhere = f"{second_openai_server.base_url}/images/generations"
    openai_server.enqueue(GENERATIONS, Reply(status=302, json={}, headers={"Location": elsewhere}))
    with httpx.Client(follow_redirects=True) as client:
        manager = VisionManager(backend=make_backend(openai_server, http_client=client, **CONFIGURED))
        error, _ = raises_within(ProviderError, lambda: generate(manager, "sync"))
    assert error.status == 302 and second_openai_server.requests == []


def test_a_redirected_download_is_not_followed(openai_server, second_openai_server):
    moved = second_openai_server.host_file("moved.png", PNG)
    openai_server.enqueue("/files/result.png", Reply(status=307, json={}, headers={"Location": moved}))
    openai_server.enqueue(GENERATIONS, Reply(json={"data": [{"url": f"{openai_server.origin}/files/result.png"}]}))
    manager = VisionManager(backend=make_backend(openai_server, **CONFIGURED))
    error, _ = raises_within(ProviderError, lambda: generate(manager, "sync"))
    assert error.status == 307 and second_openai_server.requests == []


# ---- 3. cancel takes effect at once -------------------------------------------------------------------
@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "reply",
    [
        Reply(json=PAYLOAD, delay_s=30),
        Reply(status=429, json={"error": {"message": "later"}}, headers={"Retry-After": "30"}),
        Reply(body=SHORT_BODY * 10, drip_s=0.2),
    ],
    ids=["no-headers", "retry-after-30", "dripping-body"],
)
def test_cancel_stops_a_call_at_once(openai_server, mode, reply):
    openai_server.enqueue(GENERATIONS, reply)
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    try:
        manager = VisionManager(backend=make_backend(openai_server))  # timeout_s: the default 300
        _, elapsed = raises_within(GenerationCancelledError, lambda: generate(manager, mode, cancel=cancel))
    finally:
        timer.cancel()
    assert elapsed < 1.3, f"cancelled at 0.3 s, returned at {elapsed:.1f} s"


@pytest.mark.timeout(30)
def test_cancelling_the_awaiting_task_stops_the_request(openai_server):
    openai_server.enqueue(GENERATIONS, Reply(json=PAYLOAD, delay_s=30))
    backend = make_backend(openai_server)

    async def main():
        async with backend:
            task = asyncio.ensure_future(VisionManager(backend=backend).agenerate_image("a cat"))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - started

    assert asyncio.run(main()) < 0.5


# ---- 4. only transport failures become ProviderConnectionError --------------------------------------------
class CallerBug(Exception):
    """Raised by a caller's own on_progress: must come out as it is."""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("phase", ["start", "preview"])
def test_an_exception_from_on_progress_comes_out_unchanged(openai_server, mode, phase):
    def on_progress(event):
        if event.phase == phase:
            raise CallerBug(phase)

    manager = VisionManager(backend=make_backend(openai_server, model_id="gpt-image-1"))
    with pytest.raises(CallerBug, match=phase):
        generate(manager, mode, extra={"partial_images": 2}, on_progress=on_progress)


# ---- 5. results are images before they are returned ---------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose header declares ``width`` x ``height`` (a pixel bomb when large)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20 + _chunk(b"IEND", b""), "not a readable image/png"),
        (PNG[:8] + _chunk(b"IHDR", PNG[16:29]) + b"garbage" * 5 + _chunk(b"IEND", b""), "not a readable image/png"),
        (_flip(PNG, 45), "fails its CRC"),
        (png_claiming(9000, 9000), "over the limit"),
        (b"\xff\xd8\xff\xe0" + b"garbage" * 20 + b"\xff\xd9", "not a readable image/jpeg"),
    ],
    ids=["png-signature-garbage-iend", "png-header-garbage-iend", "png-bad-crc", "pixel-bomb", "jpeg-garbage"],
)
def test_bytes_that_only_look_like_an_image_are_refused(openai_server, data, words):
    openai_server.enqueue(GENERATIONS, Reply(json={"data": [{"b64_json": base64.b64encode(data).decode()}]}))
    with pytest.raises(InvalidProviderResponseError, match=words) as info:
        generate(VisionManager(backend=make_backend(openai_server)), "sync")
    assert "data[0]" in str(info.value)


def test_real_png_and_jpeg_answers_pass(openai_server):
    assert png_claiming(64, 64)  # the helper itself builds a valid PNG
    jpeg = _jpeg()
    openai_server.enqueue(
        GENERATIONS,
        Reply(json={"data": [{"b64_json": base64.b64encode(png_claiming(64, 64)).decode()}]}),
        Reply(json={"data": [{"b64_json": base64.b64encode(jpeg).decode()}]}),
    )
    manager = VisionManager(backend=make_backend(openai_server))
    assert manager.generate_image("a cat").mime_type == "image/png"
    assert manager.generate_image("a cat").mime_type == "image/jpeg"
    manager.close()


# ---- 6. a request that cannot be encoded is refused before anything is sent ---------------------------------
@pytest.mark.parametrize("task", ["text_to_image", "image_to_image"])
@pytest.mark.parametrize(
    ("prompt", "extra", "field"),
    [
        ("a cat", {"strength": float("nan")}, "strength"),
        ("a cat", {"style_ref": object()}, "style_ref"),
        ("a cat", {"nested": {"weights": [1.0, float("inf")]}}, "nested"),
        ("a \ud800 cat", {}, "prompt"),
    ],
    ids=["nan", "object", "nested-infinity", "lone-surrogate"],
)
def test_a_request_that_cannot_be_encoded_is_refused_before_sending(openai_server, task, prompt, extra, field):
    if task == "text_to_image":
        request = ImageGenerationRequest(prompt=prompt, extra=extra)
    else:
        request = ImageEditRequest(prompt=prompt, image=make_png(8, 8), extra=extra)
    with make_backend(openai_server) as backend, pytest.raises(InvalidRequestError) as info:
        backend.run(task, request)
    assert info.value.field == field and str(info.value).startswith(f"{field}:")
    assert openai_server.requests == []


# ---- 7. async clients are closed ------------------------------------------------------------------------
def test_async_with_and_aclose_close_the_async_client(openai_server):
    backend = make_backend(openai_server)
    request = ImageGenerationRequest(prompt="a cat")

    async def with_block():
        async with backend:
            await backend.arun("text_to_image", request)
            return backend._transport.async_client()

    async def with_aclose():
        await backend.arun("text_to_image", request)
        client = backend._transport.async_client()
        await backend.aclose()
        return client

    assert asyncio.run(with_block()).is_closed
    assert asyncio.run(with_aclose()).is_closed


def test_the_managers_async_with_closes_the_backends_async_client(openai_server):
    backend = make_backend(openai_server)

    async def use():
        async with VisionManager(backend=backend) as manager:
            await manager.agenerate_image("a cat")
            return backend._transport.async_client()

    assert asyncio.run(use()).is_closed


def test_close_closes_the_async_client_of_an_idle_loop(openai_server):
    backend = make_backend(openai_server)

    async def use():
        await backend.arun("text_to_image", ImageGenerationRequest(prompt="a cat"))
        return backend._transport.async_client()

    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(use())
        backend.close()
        assert client.is_closed
    finally:
        loop.close()


def test_every_backend_is_an_async_context_manager():
    closed = []

    class Minimal(VisionBackend):
        def generate_image(self, request):
            raise NotImplementedError

        def edit_image(self, request):
            raise NotImplementedError

        def close(self):
            closed.append(True)

    async def main():
        async with Minimal():
            pass

    asyncio.run(main())
    assert closed == [True]


# ---- 8. a password in base_url never shows --------------------------------------------------------------
PASSWORD = "hunter2-in-the-url"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (Reply(status=500, json={"error": {"message": f"no user with password {PASSWORD}"}}), ProviderError),
        (Reply(body=b"{broken"), InvalidProviderResponseError),
        (Reply(json=PAYLOAD, delay_s=5), RequestTimeoutError),
        (Reply(status=302, json={}, headers={"Location": f"http://user:{PASSWORD}@elsewhere/v1"}), ProviderError),
        (Reply(json={"data": []}), InvalidProviderResponseError),
    ],
    ids=["500-echoing-it", "not-json", "timeout", "redirect", "no-data"],
)
def test_a_password_in_base_url_never_shows_in_errors(openai_server, mode, reply, error_type):
    openai_server.enqueue(GENERATIONS, reply)
    base_url = openai_server.base_url.replace("http://", f"http://user:{PASSWORD}@")
    manager = VisionManager(backend=make_backend(openai_server, base_url=base_url, timeout_s=0.5, max_retries=0))
    error, _ = raises_within(error_type, lambda: generate(manager, mode))
    assert PASSWORD not in str(error) and PASSWORD not in (getattr(error, "body", None) or "")
    assert "user:***@" in str(error) or "***" in str(error)


def test_a_password_in_base_url_is_masked_when_unreachable_or_malformed():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    manager = VisionManager(backend=make_backend(None, base_url=f"http://user:{PASSWORD}@127.0.0.1:{port}/v1"))
    error, _ = raises_within(ProviderConnectionError, lambda: generate(manager, "sync"))
    assert PASSWORD not in str(error) and f"user:***@127.0.0.1:{port}" in str(error)
    with pytest.raises(BackendNotConfiguredError) as info:
        OpenAICompatibleBackendConfig(base_url=f"ftp://user:{PASSWORD}@host/v1")
    assert PASSWORD not in str(info.value) and "user:***@host" in str(info.value)
