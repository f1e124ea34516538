"""Per-call overhead of the OpenAI-compatible backend against the raw HTTP request, and its scaling.

Both sides talk to the same loopback OpenAI-shaped server (tests/fixtures/openai_server.py) with the
same small PNG payload. For the overhead figures the server runs in a separate process, as a real
service does: in the same process its thread competes for the GIL with the caller's, which charges
the server's work to whichever side happens to be running Python at the time.

* overhead: ``calls`` raw ``httpx`` requests (POST, parse JSON, decode base64) and ``calls`` backend
  calls, interleaved one by one so machine noise hits both alike; medians and their ratio
  (target: backend / raw <= 1.05). The manager's figure (validation, PNG provenance) is shown too.
* scaling: the server answers after ``latency_ms``; ``threads`` threads share one backend instance
  and its pooled client, against one thread (target: >= 10x the throughput).

Run: ``PYTHONPATH=src python bench/openai_overhead.py [--calls 500] [--threads 16] [--latency-ms 50]``
"""

from __future__ import annotations

import argparse
import base64
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx  # noqa: E402
from _timing import interleave, timed  # noqa: E402

from abstractvision import VisionManager  # noqa: E402
from abstractvision.backends.openai_compatible import (  # noqa: E402
    OpenAICompatibleBackendConfig,
    OpenAICompatibleVisionBackend,
)
from abstractvision.types import ImageGenerationRequest  # noqa: E402
from fixtures.openai_server import OpenAIServer  # noqa: E402

PROMPT = "a red square"
MODEL = "sd-local"


def raw_call(client: httpx.Client, url: str) -> bytes:
    body = {"prompt": PROMPT, "model": MODEL, "response_format": "b64_json"}
    response = client.post(url, json=body, headers={"Authorization": "Bearer sk-bench"})
    response.raise_for_status()
    return base64.b64decode(response.json()["data"][0]["b64_json"])


def interleaved(first, second, calls: int) -> tuple[float, float, float]:
    """Medians of ``calls`` timings of each, alternating ABBA so neither side always runs first, and
    the median of the per-pair ratios ``second / first`` (adjacent calls share the machine's load, so
    the paired ratio cancels the noise of a shared machine that the two medians keep)."""
    a_times, b_times = interleave(calls, first, second)
    paired = statistics.median(b / a for a, b in zip(a_times, b_times, strict=True))
    return statistics.median(a_times), statistics.median(b_times), paired


def serve() -> None:
    """Child-process mode: run the loopback server, print its base URL, stop when stdin closes."""
    server = OpenAIServer()
    print(server.base_url, flush=True)
    sys.stdin.read()
    server.close()


def overhead(base_url: str, calls: int) -> dict[str, float]:
    url = f"{base_url}/images/generations"
    config = OpenAICompatibleBackendConfig(base_url=base_url, model_id=MODEL, api_key="sk-bench")
    backend = OpenAICompatibleVisionBackend(config=config)
    manager = VisionManager(backend=backend)
    request = ImageGenerationRequest(prompt=PROMPT)
    with httpx.Client() as client:

        def raw() -> bytes:
            return raw_call(client, url)

        def call_backend() -> bytes:
            return backend.run("text_to_image", request).data

        assert raw() == call_backend()  # same server, same payload
        for _ in range(50):  # warm both pools
            raw(), call_backend(), manager.generate_image(PROMPT)
        raw_s, backend_s, backend_paired = interleaved(raw, call_backend, calls)
        raw2_s, manager_s, manager_paired = interleaved(raw, lambda: manager.generate_image(PROMPT), calls)
    backend.close()
    return {
        "raw_ms": raw_s * 1000,
        "backend_ms": backend_s * 1000,
        "backend_ratio": backend_s / raw_s,
        "backend_paired": backend_paired,
        "manager_ms": manager_s * 1000,
        "manager_ratio": manager_s / raw2_s,
        "manager_paired": manager_paired,
    }


def scaling(server: OpenAIServer, threads: int, latency_ms: float, calls_per_thread: int) -> dict[str, float]:
    server.latency_s = latency_ms / 1000
    config = OpenAICompatibleBackendConfig(base_url=server.base_url, model_id=MODEL)
    backend = OpenAICompatibleVisionBackend(config=config)
    request = ImageGenerationRequest(prompt=PROMPT)

    def run(count: int) -> None:
        for _ in range(count):
            backend.run("text_to_image", request)

    run(2)
    single_calls = calls_per_thread * 2
    single_s = timed(lambda: run(single_calls))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, [1] * threads))  # open the pool's connections
        many_s = timed(lambda: list(pool.map(run, [calls_per_thread] * threads)))
    backend.close()
    server.latency_s = 0.0
    single_rate, many_rate = single_calls / single_s, threads * calls_per_thread / many_s
    return {"single_per_s": single_rate, "threads_per_s": many_rate, "speedup": many_rate / single_rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--calls-per-thread", type=int, default=20)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        over = overhead(child.stdout.readline().strip(), args.calls)
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    server = OpenAIServer()
    try:
        scale = scaling(server, args.threads, args.latency_ms, args.calls_per_thread)
    finally:
        server.close()
    print(f"overhead, {args.calls} interleaved calls, 8x8 PNG, median per call:")
    print(f"  raw httpx   {over['raw_ms']:.3f} ms")
    print(
        f"  backend     {over['backend_ms']:.3f} ms   ratio of medians {over['backend_ratio']:.3f}, "
        f"median paired ratio {over['backend_paired']:.3f} (target <= 1.05)"
    )
    print(
        f"  manager     {over['manager_ms']:.3f} ms   ratio of medians {over['manager_ratio']:.3f}, "
        f"median paired ratio {over['manager_paired']:.3f} (adds validation + PNG provenance)"
    )
    print(f"scaling, server latency {args.latency_ms:.0f} ms:")
    print(f"  1 thread    {scale['single_per_s']:.1f} calls/s")
    print(f"  {args.threads} threads  {scale['threads_per_s']:.1f} calls/s   {scale['speedup']:.1f}x (target >= 10x)")
    ok = over["backend_paired"] <= 1.05 and scale["speedup"] >= 10
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
