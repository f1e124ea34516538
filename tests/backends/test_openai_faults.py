"""Transport faults against the loopback server: each ends in a typed error or a successful retry,
and nothing is stored half-way. The retry policy itself is tested as pure functions."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from abstractvision import LocalAssetStore, VisionManager
from abstractvision.backends._http import MAX_PARSED_URLS
from abstractvision.backends._http_body import SseParser
from abstractvision.backends._retry import (
    INITIAL_RETRY_DELAY_S,
    MAX_RETRY_AFTER_S,
    MAX_RETRY_DELAY_S,
    parse_retry_after,
    retry_delay,
    should_retry,
)
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from abstractvision.errors import (
    InvalidProviderResponseError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    RequestTimeoutError,
)
from fixtures.openai_server import Reply, server_png

SECRET = "sk-fault-secret-xyz"
GENERATIONS = "/images/generations"


@pytest.fixture
def store(tmp_path):
    return LocalAssetStore(tmp_path / "assets")


def manager_for(server, store=None, **options):
    options.setdefault("model_id", "sd-local")
    config = OpenAICompatibleBackendConfig(base_url=server.base_url if server else options.pop("base_url"), **options)
    manager = VisionManager(backend=OpenAICompatibleVisionBackend(config=config), store=store)
    return server.track(manager) if server else manager


def stored_files(store) -> list:
    return list(store.base_dir.rglob("*")) if store.base_dir.exists() else []


# ---- the pure policy --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "expected"), [(400, False), (401, False), (404, False), (408, True), (409, True), (429, True)]
)
def test_should_retry_4xx_only_for_timeout_conflict_and_rate_limit(status, expected):
    assert should_retry(status, {}) is expected


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_should_retry_every_5xx_unless_told_not_to(status):
    assert should_retry(status, {}) is True
    assert should_retry(status, {"X-Should-Retry": "false"}) is False


def test_retry_delay_backs_off_exponentially_with_jitter_and_a_cap():
    assert retry_delay(0, {}, jitter=lambda: 0.0) == INITIAL_RETRY_DELAY_S
    assert retry_delay(1, {}, jitter=lambda: 0.0) == 2 * INITIAL_RETRY_DELAY_S
    assert retry_delay(1, {}, jitter=lambda: 1.0) == pytest.approx(0.75 * 2 * INITIAL_RETRY_DELAY_S)
    assert retry_delay(30, {}, jitter=lambda: 0.0) == MAX_RETRY_DELAY_S


def test_retry_delay_honours_the_server_and_refuses_waits_over_the_cap():
    assert retry_delay(0, {"Retry-After": "3"}) == 3.0
    assert retry_delay(0, {"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after({"Retry-After": later}) <= 30
    assert retry_delay(0, {"Retry-After": str(MAX_RETRY_AFTER_S + 1)}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None


def test_sse_parser_handles_split_chunks_and_done():
    parser = SseParser()
    assert parser.feed(b'event: a\ndata: {"x"') == []
    assert parser.feed(b": 1}\n\ndata: [DONE]\n\n") == [{"x": 1, "type": "a"}]


# ---- faults on the wire -------------------------------------------------------------------------------
def test_slow_server_hits_timeout_s(openai_server, store):
    openai_server.enqueue(GENERATIONS, Reply(delay_s=1.5))
    manager = manager_for(openai_server, store, timeout_s=0.3)
    started = time.perf_counter()
    with pytest.raises(RequestTimeoutError) as info:
        manager.generate_image("a cat")
    assert time.perf_counter() - started < 1.2
    assert info.value.timeout_s == 0.3 and "timeout_s=0.3" in str(info.value)
    assert len(openai_server.requests_to(GENERATIONS)) == 1  # a timeout is not retried (it may be billed)
    assert stored_files(store) == []


def test_429_with_retry_after_then_success(openai_server, store):
    openai_server.enqueue(
        GENERATIONS, Reply(status=429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "0.2"})
    )
    manager = manager_for(openai_server, store)
    started = time.perf_counter()
    ref = manager.generate_image("a cat")
    assert time.perf_counter() - started >= 0.2
    assert len(openai_server.requests_to(GENERATIONS)) == 2
    assert store.load_bytes(ref)


def test_429_until_retries_run_out_is_a_rate_limit_error(openai_server, store):
    reply = Reply(status=429, json={"error": {"message": f"quota for {SECRET} exceeded"}}, headers={"Retry-After": "0"})
    openai_server.enqueue(GENERATIONS, reply, reply, reply)
    manager = manager_for(openai_server, store, max_retries=2, api_key=SECRET)
    with pytest.raises(RateLimitError) as info:
        manager.generate_image("a cat")
    error = info.value
    assert error.status == 429 and error.retry_after == 0.0
    assert "exceeded" in error.provider_message and "429" in str(error) and "3 attempts" in str(error)
    assert SECRET not in str(error) and SECRET not in error.provider_message and SECRET not in error.body
    assert len(openai_server.requests_to(GENERATIONS)) == 3
    assert stored_files(store) == []


def test_500_then_success(openai_server):
    openai_server.enqueue(
        GENERATIONS, Reply(status=500, json={"error": {"message": "boom"}}, headers={"retry-after-ms": "10"})
    )
    asset = manager_for(openai_server).generate_image("a cat", seed=4)
    assert asset.metadata["seed"] == 4
    assert [r.json["seed"] for r in openai_server.requests_to(GENERATIONS)] == [4, 4]


def test_400_is_never_retried_and_keeps_the_provider_message(openai_server):
    openai_server.enqueue(GENERATIONS, Reply(status=400, json={"error": {"message": "prompt too long"}}))
    with pytest.raises(ProviderError) as info:
        manager_for(openai_server).generate_image("a cat")
    assert info.value.status == 400 and info.value.provider_message == "prompt too long"
    assert not isinstance(info.value, RateLimitError)
    assert len(openai_server.requests_to(GENERATIONS)) == 1


def test_server_asking_for_too_long_a_wait_fails_at_once(openai_server):
    openai_server.enqueue(GENERATIONS, Reply(status=503, json={"error": "busy"}, headers={"Retry-After": "3600"}))
    with pytest.raises(ProviderError) as info:
        manager_for(openai_server).generate_image("a cat")
    assert info.value.status == 503 and info.value.retry_after == 3600
    assert len(openai_server.requests_to(GENERATIONS)) == 1


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(body=b"{not json"), "not JSON"),
        (Reply(json={"data": [{"b64_json": "iVBORw0KGgoAAAANSUhEUgAA"}]}), "truncated"),
        (Reply(json={"data": [{"b64_json": "iVBORw0KGgo@@@"}]}), "not valid base64"),
        (Reply(json={"data": []}), "without a data list"),
        (Reply(json={"data": [{"b64_json": "aGVsbG8gd29ybGQ="}]}), "not image data"),
        (Reply(json={"data": [{"url": "file:///etc/passwd"}]}), "only http and https"),
    ],
    ids=["malformed-json", "truncated-base64", "bad-base64", "empty-data", "not-an-image", "file-url"],
)
def test_unusable_answers_are_typed_errors_and_nothing_is_stored(openai_server, store, reply, words):
    openai_server.enqueue(GENERATIONS, reply)
    with pytest.raises(InvalidProviderResponseError) as info:
        manager_for(openai_server, store).generate_image("a cat")
    assert words in str(info.value)
    assert len(openai_server.requests_to(GENERATIONS)) == 1
    assert stored_files(store) == []


def test_oversized_body_is_refused(openai_server, store):
    openai_server.enqueue(GENERATIONS, Reply(body=b"x" * 3_000_000))
    with pytest.raises(InvalidProviderResponseError) as info:
        manager_for(openai_server, store, max_response_bytes=1_000_000).generate_image("a cat")
    assert "1000000-byte limit" in str(info.value)
    assert stored_files(store) == []


def test_oversized_download_is_refused(openai_server):
    url = openai_server.host_file("big.png", server_png(8, 8) + b"\x00" * 2_000_000)
    openai_server.enqueue(GENERATIONS, Reply(json={"data": [{"url": url}]}))
    with pytest.raises(InvalidProviderResponseError):
        manager_for(openai_server, max_response_bytes=1_000_000).generate_image("a cat")


def test_connection_refused_is_a_connection_error_after_retries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    manager = manager_for(None, base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, api_key=SECRET)
    with pytest.raises(ProviderConnectionError) as info:
        manager.generate_image("a cat")
    assert f"127.0.0.1:{port}" in str(info.value) and "2 attempts" in str(info.value)
    assert SECRET not in str(info.value)


# ---- url answers ----------------------------------------------------------------------------------------
def test_url_answer_is_downloaded_with_the_key_only_on_the_same_origin(openai_server):
    manager = manager_for(openai_server, api_key=SECRET)
    asset = manager.generate_image("a cat", width=8, height=8, extra={"response_format": "url"})
    download = openai_server.last
    assert download.method == "GET" and download.path.startswith("/files/")
    assert download.headers["authorization"] == f"Bearer {SECRET}"
    assert asset.mime_type == "image/png"

    port = openai_server.origin.rsplit(":", 1)[1]
    other_origin = openai_server.host_file("elsewhere.png", server_png(8, 8)).replace("127.0.0.1", "localhost")
    assert f"localhost:{port}" in other_origin
    openai_server.enqueue(GENERATIONS, Reply(json={"data": [{"url": other_origin}]}))
    manager.generate_image("a cat")
    assert openai_server.last.path == "/files/elsewhere.png"
    assert "authorization" not in openai_server.last.headers


def test_failed_download_keeps_the_http_status(openai_server, store):
    openai_server.enqueue(GENERATIONS, Reply(json={"data": [{"url": f"{openai_server.origin}/files/missing.png"}]}))
    with pytest.raises(ProviderError) as info:
        manager_for(openai_server, store).generate_image("a cat")
    assert info.value.status == 404
    assert stored_files(store) == []


def test_one_off_result_urls_do_not_grow_the_parsed_url_cache(openai_server):
    backend = OpenAICompatibleVisionBackend(config=OpenAICompatibleBackendConfig(base_url=openai_server.base_url))
    manager = VisionManager(backend=backend)
    for index in range(MAX_PARSED_URLS + 8):
        url = openai_server.host_file(f"result-{index}.png", server_png(8, 8))
        openai_server.enqueue(GENERATIONS, Reply(json={"data": [{"url": url}]}))
        assert manager.generate_image("a cat").mime_type == "image/png"
    assert len(backend._transport._parsed_urls) == MAX_PARSED_URLS
    backend.close()
