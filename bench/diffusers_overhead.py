"""What the Diffusers backend costs on top of Diffusers itself, and what it holds in memory.

    python bench/diffusers_overhead.py            # all measurements, ~2 minutes on 2 CPU cores
    python bench/diffusers_overhead.py --rounds 5 # fewer timing rounds

1. Time: a warm ``VisionManager.generate_image`` call on the backend versus the raw pipeline call
   plus PNG encoding (the least any caller would do), alternated A/B so machine noise hits both,
   on the tiny pipeline and on a wider random pipeline where a call takes about a second.
   Target: median ratio <= 1.03.
2. Peak memory (fresh subprocess each): text-to-image, then image-to-image, then inpainting on one
   backend, versus text-to-image alone. ``from_pipe`` shares the weights, so target <= 1.1x.
3. ``unload()``: the share of the memory the load took that comes back. Target >= 90%.

Pipelines are random-weight (``abstractvision.testing``), built into a temporary folder: no network.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red cat"
#: (label, scale for build_random_pipeline, width=height, steps)
CASES = (("tiny", 1, 64, 2), ("~1 s", 6, 128, 2))
#: A wider pipeline for the memory figures, so weights dominate allocator noise.
MEMORY_SCALE = 16


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


#: device -> torch dtype name used on both sides (half precision on GPUs, as the backend's "auto")
DTYPES = {"cpu": "float32", "cuda": "float16"}


def backend_for(folder: Path, device: str = "cpu"):
    from abstractvision.backends.huggingface_diffusers import (
        HuggingFaceDiffusersBackendConfig,
        HuggingFaceDiffusersVisionBackend,
    )

    config = HuggingFaceDiffusersBackendConfig(
        model_id=str(folder), device=device, torch_dtype=DTYPES[device], cpu_offload="none"
    )
    return HuggingFaceDiffusersVisionBackend(config=config)


def time_case(folder: Path, size: int, steps: int, rounds: int, device: str = "cpu") -> dict:
    import torch
    from diffusers import AutoPipelineForText2Image

    from abstractvision import VisionManager

    dtype = getattr(torch, DTYPES[device])
    raw = AutoPipelineForText2Image.from_pretrained(str(folder), local_files_only=True, torch_dtype=dtype).to(device)
    raw.set_progress_bar_config(disable=True)
    manager = VisionManager(backend=backend_for(folder, device))

    def raw_call(seed: int) -> bytes:
        generator = torch.Generator(device).manual_seed(seed)
        image = raw(PROMPT, width=size, height=size, num_inference_steps=steps, generator=generator).images[0]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def backend_call(seed: int) -> bytes:
        return manager.generate_image(PROMPT, seed=seed, width=size, height=size, steps=steps).data

    for warm in (raw_call, backend_call):  # load, allocate, first-call costs out of the way
        warm(0)
    raw_times, backend_times = [], []
    for index in range(rounds):
        pair = ((raw_call, raw_times), (backend_call, backend_times))
        for call, times in pair if index % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            call(index)
            times.append(time.perf_counter() - started)
    raw_median, backend_median = statistics.median(raw_times), statistics.median(backend_times)
    return {"raw_s": raw_median, "backend_s": backend_median, "ratio": backend_median / raw_median}


def memory_child(folder: str, tiny: str, tasks: str) -> None:
    """Run in a fresh process: peak RSS for ``tasks``, and what ``unload()`` gives back.

    A load and unload of the tiny pipeline first imports every module the pipeline classes pull
    in, so the figures below are the weights and buffers, not one-time imports.
    """
    from abstractvision import VisionManager

    warm = backend_for(Path(tiny))
    VisionManager(backend=warm).generate_image(PROMPT, seed=1, width=64, height=64, steps=1)
    warm.unload()
    from PIL import Image

    size = 64  # small activations, so the figures are about the weights (shared or not)
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (120, 80, 40)).save(buffer, format="PNG")
    picture = buffer.getvalue()
    buffer = io.BytesIO()
    Image.new("L", (size, size), 255).save(buffer, format="PNG")
    mask = buffer.getvalue()
    gc.collect()
    before_load = rss_bytes()
    backend = backend_for(Path(folder))
    manager = VisionManager(backend=backend)
    manager.generate_image(PROMPT, seed=1, width=size, height=size, steps=2)
    if tasks == "all":
        manager.edit_image(PROMPT, picture, seed=1, steps=2, strength=1.0)
        manager.edit_image(PROMPT, picture, mask=mask, seed=1, steps=2)
    peak = peak_rss_bytes()
    gc.collect()
    loaded = rss_bytes()  # after a call: safetensors weights are mapped lazily, a call touches them all
    backend.unload()
    unloaded = rss_bytes()
    print(json.dumps({"peak": peak, "before_load": before_load, "loaded": loaded, "unloaded": unloaded}))


def measure_memory(folder: Path, tiny: Path, tasks: str, threads: int) -> dict:
    command = [sys.executable, __file__, "--threads", str(threads), "--memory-child", str(folder), str(tiny), tasks]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides (1: least noise)")
    parser.add_argument("--device", choices=sorted(DTYPES), default="cpu", help="cuda: timings only, float16")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    from abstractvision.testing import build_random_pipeline

    mib = 1024 * 1024
    with tempfile.TemporaryDirectory() as scratch:
        folders = {
            label: build_random_pipeline(Path(scratch) / f"scale{scale}", scale=scale) for label, scale, *_ in CASES
        }
        large = build_random_pipeline(Path(scratch) / f"scale{MEMORY_SCALE}", scale=MEMORY_SCALE)
        print(f"device: {args.device} ({DTYPES[args.device]})")
        print("| pipeline | size, steps | raw pipeline + PNG (median) | backend via VisionManager (median) | ratio |")
        print("|---|---|---|---|---|")
        for label, _scale, size, steps in CASES:
            rounds = args.rounds if label == "tiny" else max(5, args.rounds // 2)
            r = time_case(folders[label], size, steps, rounds, args.device)
            print(
                f"| {label} | {size}x{size}, {steps} | {r['raw_s'] * 1000:.1f} ms | {r['backend_s'] * 1000:.1f} ms "
                f"| {r['ratio']:.3f} |"
            )
        if args.device != "cpu":
            return  # the memory figures are process RSS: CPU runs only
        weights = sum(f.stat().st_size for f in large.rglob("*.safetensors"))
        alone = measure_memory(large, folders["tiny"], "t2i", args.threads)
        chained = measure_memory(large, folders["tiny"], "all", args.threads)
        print()
        print(f"| measurement (scale-{MEMORY_SCALE} pipeline, {weights / mib:.0f} MiB of weights, 64x64) | value |")
        print("|---|---|")
        print(f"| peak RSS, text->image alone | {alone['peak'] / mib:.0f} MiB |")
        print(f"| peak RSS, text->image -> image->image -> inpaint | {chained['peak'] / mib:.0f} MiB |")
        print(f"| ratio | {chained['peak'] / alone['peak']:.3f} |")
        for name, run in (("text->image", alone), ("all three tasks", chained)):
            took = run["loaded"] - run["before_load"]
            back = run["loaded"] - run["unloaded"]
            print(
                f"| unload after {name}: load took {took / mib:.0f} MiB, unload returned {back / mib:.0f} MiB "
                f"| {back / took:.0%} |"
            )


if __name__ == "__main__":
    main()
