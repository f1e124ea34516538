"""What ``abstractvision serve`` costs on top of its engine, and how it holds up under load.

    PYTHONPATH=src python bench/server.py             # all three parts, 5-6 minutes on 2 CPU cores
    PYTHONPATH=src python bench/server.py --quick     # fewer rounds, about 3 minutes
    PYTHONPATH=src python bench/server.py overhead    # one part (overhead, sdcpp, load), or several

1. ``overhead``: one request through the server vs a direct ``VisionManager.generate_image`` call
   on the same warm backend (random Diffusers pipelines: the tiny one, 64x64, and a ~0.7 s one,
   128x128; 2 steps, same seed), calls interleaved A/B, B/A so machine noise hits both sides. Two
   set-ups: the server in this process (uvicorn in a thread over the *same backend object* the
   direct calls use) and ``abstractvision serve`` as its own process (its own copy of the same
   pipeline, same torch thread count). The served side pays for HTTP, JSON, the job queue, SQLite
   records, the result store and base64, and its client decodes the answer, as any client does.
   CPU per call (both processes) is shown beside wall time: other jobs on a shared machine move
   it much less. Target: median paired ratio <= 1.10.
2. ``sdcpp``: stable-diffusion.cpp's own ``sd-server`` (0.4.5, the cached build) vs ``abstractvision
   serve --provider sdcpp`` in python mode (bindings, model kept loaded) and cli mode (one sd-cli
   per image), on the random SD 1.x checkpoint: same size, steps, cfg, seeds and default sampler
   (the first image of each is compared pixel for pixel: same work), 4 concurrent clients, all
   warm, images per minute, rounds in alternating order. Both servers run one generation at a time
   (sd-server: one mutex around its engine; ours: one job at a time, the default for local engines)
   with the same engine threads (``--engine-threads``). Our backends alone (a ``VisionManager``, no
   server) tell the server's share from the engine's. Target: python mode >= 0.95x sd-server.
3. ``load``: 64 clients at once against ``abstractvision serve`` over the slow test backend
   (``abstractvision.testing.slow``: sleeps per step, no CPU), a queue as deep as the clients:
   p50/p99 latency, and throughput against the backend's own pace called directly.

Needs the ``server``, ``diffusers`` and ``sdcpp`` extras; the sd.cpp build and the random checkpoint
are built (once) and cached under ``~/.cache/abstractvision`` as the tests do. Linux (reads ``/proc``).
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

import httpx  # noqa: E402
from _timing import interleave, timed  # noqa: E402

from fixtures.live_server import LAUNCHER, free_port  # noqa: E402
from fixtures.sdcpp_server import stop  # noqa: E402

PROMPT = "a lighthouse at dusk"
PARTS = ("overhead", "sdcpp", "load")
READY_TIMEOUT_S = 180.0  # a 2 GB checkpoint loaded from a cold disk


# ---- servers -------------------------------------------------------------------------------------
@dataclass
class Served:
    """A running server: its origin, and (for a subprocess) the process and its log."""

    url: str
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path else ""


def wait_ready(served: Served, path: str = "/readyz", timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until ``path`` answers 200 (``/readyz``: the model is loaded), or the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if served.process is not None and served.process.poll() is not None:
            raise RuntimeError(f"the server exited with {served.process.returncode}:\n{served.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(served.url + path, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{served.url}{path} not ready in {timeout_s:.0f} s:\n{served.log_tail()}")


@contextlib.contextmanager
def serve_process(args: list[str], folder: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """``abstractvision serve ARGS`` as its own process (the slow backend registered), until ready."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), full_env.get("PYTHONPATH")) if p)
    log_path = folder / "serve.log"
    command = [sys.executable, str(LAUNCHER), "serve", "--port", str(port), "--store", str(folder / "store"), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=folder)
    served = Served(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_ready(served)
        yield served
    finally:
        stop(process)


@contextlib.contextmanager
def serve_in_thread(backend: Any, folder: Path) -> Iterator[Served]:
    """The app over ``backend`` (this very object) on uvicorn in a thread of this process."""
    import uvicorn

    from abstractvision.server.app import create_app_for_backend
    from abstractvision.server.settings import ServerConfig

    app = create_app_for_backend(ServerConfig(store=str(folder / "store")), backend)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn-bench", daemon=True)
    thread.start()
    served = Served(f"http://127.0.0.1:{port}")
    try:
        wait_ready(served, timeout_s=30)
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def first_image(reply: httpx.Response) -> bytes:
    """The first image of an Images API answer (ours or sd-server's), decoded as a client does."""
    reply.raise_for_status()
    return base64.b64decode(reply.json()["data"][0]["b64_json"])


def pixels(png: bytes) -> bytes:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB").tobytes()


# ---- concurrent clients --------------------------------------------------------------------------
@dataclass
class LoadRun:
    """What a batch of concurrent clients saw."""

    wall_s: float
    latencies: list[float] = field(default_factory=list)  # of the 200 answers
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def per_minute(self) -> float:
        return 60 * self.completed / self.wall_s


def run_clients(url: str, path: str, bodies: list[list[dict]], timeout_s: float = 600) -> LoadRun:
    """One client per entry of ``bodies``, all at once, each sending its bodies one after another."""

    async def main() -> LoadRun:
        limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
        async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:
            run = LoadRun(0.0)

            async def client_loop(sequence: list[dict]) -> None:
                for body in sequence:
                    started = time.perf_counter()
                    reply = await client.post(path, json=body)
                    run.statuses[reply.status_code] = run.statuses.get(reply.status_code, 0) + 1
                    if reply.status_code == 200:
                        first_image(reply)
                        run.latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(client_loop(sequence) for sequence in bodies))
            run.wall_s = time.perf_counter() - started
            return run

    return asyncio.run(main())


def threads_cpu_s(pid: int) -> float:
    """CPU seconds the live threads of process ``pid`` have used so far (Linux; nanosecond counters)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0]) / 1e9
    return total


def cpu_now(pid: int | None) -> float:
    """CPU seconds used so far by this process and, given ``pid``, by that one."""
    return time.process_time() + (threads_cpu_s(pid) if pid is not None else 0.0)


class CpuMeter:
    """``function`` as a call that also records the CPU seconds each call used (here and in ``pid``):
    unlike wall time, barely moved by other processes' load on a shared machine."""

    def __init__(self, function: Callable[[], object], pid: int | None):
        self.function, self.pid = function, pid
        self.cpu_s: list[float] = []

    def __call__(self) -> object:
        before = cpu_now(self.pid)
        result = self.function()
        self.cpu_s.append(cpu_now(self.pid) - before)
        return result


def table(title: str, notes: list[str], header: list[str], rows: list[list[str]]) -> None:
    """Print one markdown table with its title and notes."""
    print("\n".join([f"### {title}", *notes, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]))
    print("\n".join("| " + " | ".join(row) + " |" for row in rows), end="\n\n")


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1): with 128 samples, p99 is the second slowest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


# ---- 1. overhead ---------------------------------------------------------------------------------
#: (label, build_random_pipeline scale, width = height, steps): the tiny pipeline, and one where a
#: call takes about half a second on 2 CPU cores (as in bench/diffusers_overhead.py)
PIPELINES = (("tiny", 1, 64, 2), ("scale 6", 6, 128, 2))


def overhead(args: argparse.Namespace, scratch: Path) -> list[dict]:
    import torch

    from abstractvision.testing import build_random_pipeline

    torch.set_num_threads(args.threads)
    rows = []
    for label, scale, size, steps in PIPELINES:
        folder = build_random_pipeline(scratch / f"scale{scale}", scale=scale)
        rounds = args.rounds if scale == 1 else max(5, args.rounds // 3)
        rows += overhead_of(args, folder, label, size, steps, rounds, scratch / label)
    return rows


def overhead_of(
    args: argparse.Namespace, folder: Path, label: str, size: int, steps: int, rounds: int, scratch: Path
) -> list[dict]:
    """Both set-ups (server in this process over the same backend object; server as its own process)."""
    from abstractvision import VisionManager
    from abstractvision.backends.huggingface_diffusers import (
        HuggingFaceDiffusersBackendConfig,
        HuggingFaceDiffusersVisionBackend,
    )

    config = HuggingFaceDiffusersBackendConfig(
        model_id=str(folder), device="cpu", torch_dtype="float32", cpu_offload="none"
    )
    backend = HuggingFaceDiffusersVisionBackend(config=config)
    manager = VisionManager(backend=backend)
    seed = 7
    body = {"prompt": PROMPT, "size": f"{size}x{size}", "steps": steps, "seed": seed}

    def direct() -> bytes:
        return manager.generate_image(PROMPT, width=size, height=size, steps=steps, seed=seed).data

    def measure(setup: str, served: Served) -> dict:
        pid = served.process.pid if served.process else None
        with httpx.Client(base_url=served.url, timeout=600) as client:

            def through_server() -> bytes:
                return first_image(client.post("/v1/images/generations", json=body))

            same = pixels(through_server()) == pixels(direct())  # also the warm-up of both sides
            served_side, direct_side = CpuMeter(through_server, pid), CpuMeter(direct, pid)
            served_times, direct_times = interleave(rounds, served_side, direct_side)
        walls = [s / d for s, d in zip(served_times, direct_times, strict=True)]
        return {
            "pipeline": f"{label}, {size}x{size}, {steps} steps",
            "setup": setup,
            "direct_ms": statistics.median(direct_times) * 1000,
            "served_ms": statistics.median(served_times) * 1000,
            "paired_ratio": statistics.median(walls),
            "ratio_of_medians": statistics.median(served_times) / statistics.median(direct_times),
            "cpu_ms": (statistics.median(direct_side.cpu_s) * 1000, statistics.median(served_side.cpu_s) * 1000),
            "rounds": rounds,
            "same_pixels": same,
        }

    rows = []
    with serve_in_thread(backend, scratch / "in-process") as served:
        rows.append(measure("in this process, same backend object", served))
    serve_args = ["--provider", "diffusers", "--model", str(folder), "--device", "cpu", "--dtype", "float32"]
    serve_args += ["--cpu-offload", "none", "--preload"]
    threads_env = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    with serve_process(serve_args, scratch / "subprocess", env=threads_env) as served:
        rows.append(measure("`abstractvision serve` process", served))
    backend.close()
    return rows


def print_overhead(rows: list[dict]) -> None:
    header = ["pipeline", "server", "direct call", "through the server", "paired ratio", "ratio of medians"]
    header += ["CPU per call, direct / served (ratio)", "rounds", "same pixels"]
    lines = []
    for r in rows:
        direct_cpu, served_cpu = r["cpu_ms"]
        lines.append([
            r["pipeline"], r["setup"], f"{r['direct_ms']:.1f} ms", f"{r['served_ms']:.1f} ms",
            f"**{r['paired_ratio']:.3f}**", f"{r['ratio_of_medians']:.3f}",
            f"{direct_cpu:.1f} / {served_cpu:.1f} ms ({served_cpu / direct_cpu:.3f})", str(r["rounds"]),
            "yes" if r["same_pixels"] else "NO",
        ])  # fmt: skip
    notes = ["random Diffusers pipelines, CPU float32, seed 7; medians of interleaved calls; CPU: both processes"]
    table("(a) one request through the server vs a direct VisionManager call", notes, header, lines)


# ---- 2. versus sd-server -------------------------------------------------------------------------
def sd_server_body(seed: int, *, size: int, steps: int, cfg: float) -> dict:
    """sd-server 0.4.5 reads seed/steps/cfg only from a one-line block inside the prompt."""
    extra = json.dumps({"seed": seed, "steps": steps, "cfg_scale": cfg}, separators=(",", ":"))
    return {"prompt": f"{PROMPT}<sd_cpp_extra_args>{extra}</sd_cpp_extra_args>", "size": f"{size}x{size}"}


def ours_body(seed: int, *, size: int, steps: int, cfg: float) -> dict:
    return {"prompt": PROMPT, "size": f"{size}x{size}", "seed": seed, "steps": steps, "guidance_scale": cfg}


@dataclass
class Side:
    """One contender of part 2: its first image's pixels for a seed, and one round of images."""

    name: str
    first: Callable[[int], bytes]
    round: Callable[[list[list[int]]], LoadRun]  # seeds per client -> what the clients saw


def server_side(name: str, served: Served, body: Callable[[int], dict]) -> Side:
    def first(seed: int) -> bytes:
        reply = httpx.post(served.url + "/v1/images/generations", json=body(seed), timeout=600)
        return pixels(first_image(reply))

    def one_round(seeds: list[list[int]]) -> LoadRun:
        run = run_clients(served.url, "/v1/images/generations", [[body(seed) for seed in client] for client in seeds])
        if run.completed != sum(map(len, seeds)):
            raise RuntimeError(f"{name}: answers {run.statuses}:\n{served.log_tail()}")
        return run

    return Side(name, first, one_round)


def engine_side(name: str, image: Callable[[int], bytes]) -> Side:
    """The engine without any server: the same images one after another (what one client could get)."""

    def one_round(seeds: list[list[int]]) -> LoadRun:
        run = LoadRun(0.0, statuses={200: 0})
        started = time.perf_counter()
        for seed in (seed for client in seeds for seed in client):
            call_started = time.perf_counter()
            image(seed)
            run.latencies.append(time.perf_counter() - call_started)
            run.statuses[200] += 1
        run.wall_s = time.perf_counter() - started
        return run

    return Side(name, lambda seed: pixels(image(seed)), one_round)


def versus_sd_server(args: argparse.Namespace, scratch: Path) -> dict:
    from fixtures.sd15_checkpoint import ensure_sd15_checkpoint
    from fixtures.sdcpp import ensure_sd_cli
    from fixtures.sdcpp_server import start_sd_server

    sd_cli, checkpoint = ensure_sd_cli(), ensure_sd15_checkpoint()
    size, steps, cfg = args.size, args.steps, args.cfg
    common = ["--provider", "sdcpp", "--model", str(checkpoint)]
    cli_args = ["-t", str(args.engine_threads)] if args.engine_threads else []
    sides: list[Side] = []
    with contextlib.ExitStack() as stack:
        sd = start_sd_server(
            with_args(sd_cli.with_name("sd-server"), cli_args, scratch), checkpoint, scratch / "sd-server"
        )
        stack.callback(stop, sd.process)
        sd_served = Served(sd.origin, sd.process, sd.log_path)
        shape = {"size": size, "steps": steps, "cfg": cfg}
        sides.append(server_side("sd-server", sd_served, functools.partial(sd_server_body, **shape)))
        ours = [("python", ["--sd-mode", "python", "--preload"])]
        if not args.no_cli_mode:
            extra = ["--extra-args", " ".join(cli_args)] if cli_args else []
            ours.append(("cli", ["--sd-mode", "cli", "--sd-cli", str(sd_cli), *extra]))
        for mode, flags in ours:
            served = stack.enter_context(serve_process([*common, *flags], scratch / f"ours-{mode}"))
            body = functools.partial(ours_body, **shape)
            sides.append(server_side(f"abstractvision serve, {mode} mode", served, body))
        if not args.no_engines:
            sides += engine_sides(sd_cli, checkpoint, args, cli_args)
        first = {side.name: side.first(1) for side in sides}  # warm-up, and the same-work check
        runs: dict[str, list[LoadRun]] = {side.name: [] for side in sides}
        seeds = [[100 + c * args.requests + i for i in range(args.requests)] for c in range(args.clients)]
        for index in range(args.sd_rounds):
            for side in sides if index % 2 == 0 else sides[::-1]:
                runs[side.name].append(side.round(seeds))
    baseline = runs["sd-server"]
    rows = []
    for side in sides:
        paired = [ours.per_minute / base.per_minute for ours, base in zip(runs[side.name], baseline, strict=True)]
        rows.append(
            {
                "name": side.name,
                "per_minute": statistics.median(r.per_minute for r in runs[side.name]),
                "each": [round(r.per_minute, 2) for r in runs[side.name]],
                "latency_p50": statistics.median(lat for r in runs[side.name] for lat in r.latencies),
                "paired_ratio": statistics.median(paired),
                "same_pixels": first[side.name] == first["sd-server"],
            }
        )
    from stable_diffusion_cpp import stable_diffusion_cpp as bindings

    return {"sides": rows, "cores": bindings.sd_get_num_physical_cores()}


def with_args(binary: Path, extra: list[str], folder: Path) -> Path:
    """``binary`` itself, or a wrapper script that runs it with ``extra`` arguments first."""
    if not extra:
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / f"{binary.name}-wrapped"
    wrapper.write_text(f'#!/bin/sh\nexec "{binary}" {" ".join(extra)} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def engine_sides(sd_cli: Path, checkpoint: Path, args: argparse.Namespace, cli_args: list[str]) -> list[Side]:
    """What each of our modes runs, with no server: a ``VisionManager`` over the sdcpp backend in
    python mode (the bindings, in this process) and in cli mode (one sd-cli per image). Served vs
    these is the server's share; these vs sd-server is the engine's (its build, its settings)."""
    from abstractvision import VisionManager
    from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend

    sides = []
    for mode, extra in (("python", {}), ("cli", {"sd_cli_path": str(sd_cli), "extra_args": cli_args})):
        backend = StableDiffusionCppVisionBackend(model=str(checkpoint), mode=mode, **extra)
        manager = VisionManager(backend=backend)

        def image(seed: int, manager: VisionManager = manager) -> bytes:
            return manager.generate_image(
                PROMPT, width=args.size, height=args.size, steps=args.steps, seed=seed, guidance_scale=args.cfg
            ).data

        sides.append(engine_side(f"{mode}-mode backend alone, no server", image))
    return sides


def print_versus(args: argparse.Namespace, result: dict) -> None:
    cpus = os.cpu_count() or 1
    threads = f"-t {args.engine_threads}" if args.engine_threads else f"default (physical cores: {result['cores']})"
    notes = [
        f"random SD 1.x checkpoint, {args.size}x{args.size}, {args.steps} step(s), cfg {args.cfg}, default sampler; "
        f"{args.clients} concurrent clients x {args.requests} request(s) per round (backends alone: the same images "
        f"one after another); {args.sd_rounds} rounds in alternating order",
        f"engine threads: sd-server and sd-cli {threads}; python mode: the backend's (the physical cores, "
        f"{result['cores']} of {cpus} CPUs)",
    ]
    header = ["contender", "images/min (median)", "each round", "latency p50", "ratio to sd-server (paired)"]
    header.append("same pixels as sd-server")
    rows = [
        [side["name"], f"{side['per_minute']:.2f}", ", ".join(map(str, side["each"])), f"{side['latency_p50']:.2f} s",
         f"**{side['paired_ratio']:.3f}**", "yes" if side["same_pixels"] else "NO"]
        for side in result["sides"]
    ]  # fmt: skip
    table("(b) images per minute: abstractvision serve --provider sdcpp vs sd-server", notes, header, rows)


# ---- 3. load -------------------------------------------------------------------------------------
def direct_job_s(args: argparse.Namespace, calls: int = 10) -> list[float]:
    """Seconds one slow-backend job takes called directly (no server), with a cancel event as the
    server passes one (the backend then sleeps by waiting on it): the engine's own pace."""
    from abstractvision import VisionManager
    from abstractvision.testing.slow import SlowBackend, SlowConfig

    manager = VisionManager(backend=SlowBackend(SlowConfig(step_s=args.slow_step_s, steps=args.slow_steps)))
    cancel = threading.Event()
    return [timed(lambda: manager.generate_image(PROMPT, width=64, height=64, cancel=cancel)) for _ in range(calls)]


def load(args: argparse.Namespace, scratch: Path) -> dict:
    serve_args = [
        "--provider", "slow", "--slow-step-s", str(args.slow_step_s), "--slow-steps", str(args.slow_steps),
        "--max-queue", str(args.load_clients), "--concurrency", str(args.concurrency),
    ]  # fmt: skip
    direct = direct_job_s(args)
    with serve_process(serve_args, scratch / "load") as served:
        body = {"prompt": PROMPT, "size": "64x64"}
        first_image(httpx.post(served.url + "/v1/images/generations", json=body, timeout=60))  # warm
        bodies = [[{**body, "seed": c * 1000 + i} for i in range(args.load_requests)] for c in range(args.load_clients)]
        cpu_before = threads_cpu_s(served.process.pid)
        run = run_clients(served.url, "/v1/images/generations", bodies)
        server_cpu_s = threads_cpu_s(served.process.pid) - cpu_before
    direct += direct_job_s(args)  # before and after: the machine's load may change meanwhile
    job_s = statistics.mean(direct)
    return {
        "clients": args.load_clients,
        "requests": args.load_clients * args.load_requests,
        "completed": run.completed,
        "statuses": run.statuses,
        "job_s": job_s,
        "p50": percentile(run.latencies, 0.50),
        "p99": percentile(run.latencies, 0.99),
        "max": max(run.latencies),
        "per_s": run.completed / run.wall_s,
        "direct_per_s": args.concurrency / job_s,
        "server_cpu_ms": server_cpu_s * 1000 / max(1, run.completed),
    }


def print_load(args: argparse.Namespace, r: dict) -> None:
    nominal = args.slow_steps * args.slow_step_s
    notes = [
        f"{r['clients']} clients at once x {args.load_requests} requests each; slow backend {args.slow_steps} steps x "
        f"{args.slow_step_s} s = {nominal:.2f} s per job ({r['job_s']:.3f} s measured, called directly); "
        f"concurrency {args.concurrency}, max queue {r['clients']}: a request waits behind up to "
        f"{(r['clients'] - 1) * r['job_s'] / args.concurrency:.1f} s of work"
    ]
    header = ["requests", "completed", "other answers", "p50 latency", "p99 latency", "max", "throughput"]
    header += ["engine pace, direct", "share", "server CPU per request"]
    others = {k: v for k, v in r["statuses"].items() if k != 200} or "none"
    row = [
        str(r["requests"]), str(r["completed"]), str(others), f"{r['p50']:.2f} s", f"{r['p99']:.2f} s",
        f"{r['max']:.2f} s", f"{r['per_s']:.2f} jobs/s", f"{r['direct_per_s']:.2f} jobs/s",
        f"**{r['per_s'] / r['direct_per_s']:.3f}**", f"{r['server_cpu_ms']:.1f} ms",
    ]  # fmt: skip
    table(f"(c) {r['clients']} queued clients on the slow backend", notes, header, [row])


# ---- main ----------------------------------------------------------------------------------------
def machine() -> str:
    from importlib.metadata import PackageNotFoundError, version

    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    packages = []
    for name in ("abstractvision", "fastapi", "uvicorn", "httpx", "torch", "diffusers", "stable-diffusion-cpp-python"):
        with contextlib.suppress(PackageNotFoundError):
            packages.append(f"{name} {version(name)}")
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{date.today().isoformat()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({model}), "
        f"Python {platform.python_version()}, {', '.join(packages)}; load average before: {load_avg}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"which parts: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about two thirds of the time)")
    group = parser.add_argument_group("overhead")
    group.add_argument("--rounds", type=int, default=41, help="interleaved call pairs per set-up (default 41)")
    group.add_argument("--threads", type=int, default=1, help="torch threads on both sides (1: least noise)")
    group = parser.add_argument_group("sdcpp")
    group.add_argument("--size", type=int, default=64, help="width = height (multiple of 64; default 64)")
    group.add_argument("--steps", type=int, default=1, help="sampling steps (default 1)")
    group.add_argument("--cfg", type=float, default=7.0, help="cfg scale (default 7.0, sd-server's default)")
    group.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    group.add_argument("--requests", type=int, default=1, help="requests per client per round (default 1)")
    group.add_argument("--sd-rounds", type=int, default=2, help="rounds, order reversed every round (default 2)")
    group.add_argument("--no-cli-mode", action="store_true", help="skip abstractvision serve's cli mode")
    group.add_argument("--no-engines", action="store_true", help="skip our backends alone (no server)")
    group.add_argument(
        "--engine-threads",
        type=int,
        default=0,
        help="threads for sd-server and sd-cli (-t); default 0: each engine's own default, the physical cores "
        "(python mode uses the same count)",
    )
    group = parser.add_argument_group("load")
    group.add_argument("--load-clients", type=int, default=64, help="clients at once (default 64)")
    group.add_argument("--load-requests", type=int, default=2, help="requests per client (default 2)")
    group.add_argument("--slow-step-s", type=float, default=0.05, help="slow backend: seconds per step (0.05)")
    group.add_argument("--slow-steps", type=int, default=4, help="slow backend: steps per job (default 4)")
    group.add_argument("--concurrency", type=int, default=1, help="jobs the server runs at once (default 1)")
    args = parser.parse_args()
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    args.parts = args.parts or list(PARTS)
    if args.quick:
        args.rounds, args.load_requests, args.no_engines = min(args.rounds, 9), 1, True
    return args


def main() -> None:
    args = parse_args()
    print(f"machine: {machine()}")
    print(f"command: python bench/server.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    with tempfile.TemporaryDirectory(prefix="abstractvision-bench-server-") as tmp:
        scratch = Path(tmp)
        if "overhead" in args.parts:
            print_overhead(overhead(args, scratch / "overhead"))
        if "sdcpp" in args.parts:
            print_versus(args, versus_sd_server(args, scratch / "sdcpp"))
        if "load" in args.parts:
            print_load(args, load(args, scratch / "load"))


if __name__ == "__main__":
    main()
