"""``serve --ray`` against itself and against plain ``serve``: throughput with 1 and 2 engine
replicas, and what the Ray path adds to one request.

    PYTHONPATH=src python bench/ray_scaling.py           # ~2 minutes on 2 CPU cores
    PYTHONPATH=src python bench/ray_scaling.py --quick   # fewer requests and rounds, ~1 minute

Needs the ``[ray]`` extra. Starts a local Ray cluster (127.0.0.1) and the application on it with
the slow test backend (``abstractvision.testing.slow``: it sleeps per step, so a replica's work
costs no CPU and the figures show the serving path, not this machine's cores).

1. Throughput: ``--clients`` clients keep ``--requests`` sync image requests going (each image
   ``--steps`` x ``--step-s``), against 1 replica, then 2. Images per second; target: 2 replicas
   >= 1.7x one.
2. One request: the same request, one at a time, through the Ray path (Serve's proxy, the ingress
   replica, the engine replica) and through plain ``abstractvision serve`` (its own process) on the
   same backend, alternated ABBA. Median of the paired ratios Ray / plain; target <= 1.15.

Prints markdown tables for docs/benchmarks.md; exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
from _timing import interleave  # noqa: E402

from fixtures.live_server import free_port, wait_until_healthy  # noqa: E402

LAUNCHER = ROOT / "tests" / "server" / "serve_launcher.py"
BODY = {"prompt": "a red square", "model": "slow-a"}


def images_per_second(url: str, requests: int, clients: int) -> float:
    def one(_: int) -> None:
        httpx.post(f"{url}/v1/images/generations", json=BODY, timeout=120).raise_for_status()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))  # every replica has loaded the model
        started = time.perf_counter()
        list(pool.map(one, range(requests)))
    return requests / (time.perf_counter() - started)


def one_request(url: str, client: httpx.Client) -> None:
    client.post(f"{url}/v1/images/generations", json=BODY, timeout=60).raise_for_status()


class RayApp:
    """The application on a local Ray cluster, redeployed with other settings by :meth:`deploy`."""

    def __init__(self, settings: dict, store: Path):
        import ray
        from ray import serve

        from abstractvision.backends import register_backend

        register_backend("slow", "abstractvision.testing.slow:SlowBackend", description="slow test backend")
        logging.getLogger("ray.serve").setLevel(logging.WARNING)  # the tables only on stdout
        path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
        ray.init(
            address="local",
            num_cpus=8,
            include_dashboard=False,
            logging_level="error",
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},  # this checkout, as the driver's
        )
        self.port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings, self.store = settings, store

    def deploy(self, replicas: int) -> str:
        from ray import serve

        from abstractvision.server.ray import APP_NAME, build_application
        from abstractvision.server.ray_config import deployment_for

        server = {"store": str(self.store / f"ray-{replicas}"), "max_queue": 256}
        ray_options = {"replicas": replicas, "cpus_per_replica": 0.25, "gpus_per_replica": 0}
        deployment = deployment_for("slow", ["slow-a"], self.settings, server, ray_options)
        serve.run(build_application(deployment), name=APP_NAME, route_prefix="/")
        return self.url

    def close(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()


def plain_serve(settings: dict, store: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    flags = ["--slow-step-s", str(settings["step_s"]), "--slow-steps", str(settings["steps"])]
    command = [sys.executable, str(LAUNCHER), "serve", "--provider", "slow", "--model", "slow-a", *flags]
    command += ["--port", str(port), "--store", str(store / "plain"), "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, 60, process=process)
    return process, url


def versions() -> str:
    import ray

    import abstractvision

    return f"Python {platform.python_version()}, Ray {ray.__version__}, abstractvision {abstractvision.__version__}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds (~1 minute)")
    parser.add_argument("--requests", type=int, default=32, help="requests per throughput run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the throughput runs")
    parser.add_argument("--rounds", type=int, default=40, help="ABBA rounds of the one-request comparison")
    parser.add_argument("--steps", type=int, default=5, help="steps of one image")
    parser.add_argument("--step-s", type=float, default=0.1, help="seconds per step (one image: steps x step_s)")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.rounds = 16, 12
    settings = {"step_s": args.step_s, "steps": args.steps}
    image_s = args.steps * args.step_s
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder)
        cluster = RayApp(settings, store)
        plain, plain_url = plain_serve(settings, store)
        try:
            rates = {n: images_per_second(cluster.deploy(n), args.requests, args.clients) for n in (1, 2)}
            url = cluster.deploy(1)
            with httpx.Client() as client:
                for _ in range(3):  # warm: connections, the loaded model
                    one_request(url, client), one_request(plain_url, client)
                ray_times, plain_times = interleave(
                    args.rounds, lambda: one_request(url, client), lambda: one_request(plain_url, client)
                )
        finally:
            plain.terminate()
            plain.wait(timeout=60)
            cluster.close()
    speedup = rates[2] / rates[1]
    paired = statistics.median(r / p for r, p in zip(ray_times, plain_times, strict=True))
    ray_ms, plain_ms = statistics.median(ray_times) * 1000, statistics.median(plain_times) * 1000

    print(f"{versions()}, {platform.system()}, {platform.machine()}")
    print(f"\nThroughput: {args.requests} requests, {args.clients} clients, one image = {image_s:.2f} s of engine\n")
    print("| engine replicas | images/s | vs 1 replica | best possible |")
    print("|---|---|---|---|")
    for n in (1, 2):
        print(f"| {n} | {rates[n]:.2f} | {rates[n] / rates[1]:.2f}x | {n / image_s:.2f} |")
    print(f"\nOne request at a time, {args.rounds} rounds ABBA, one replica\n")
    print("| path | median ms | over the engine ms |")
    print("|---|---|---|")
    print(f"| plain `serve` | {plain_ms:.1f} | {plain_ms - image_s * 1000:.1f} |")
    print(f"| `serve --ray` | {ray_ms:.1f} | {ray_ms - image_s * 1000:.1f} |")
    print(f"\nmedian paired ratio Ray / plain: {paired:.3f} (target <= 1.15); ratio of medians {ray_ms / plain_ms:.3f}")
    print(f"2 replicas / 1: {speedup:.2f}x (target >= 1.7)")
    ok = speedup >= 1.7 and paired <= 1.15
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
