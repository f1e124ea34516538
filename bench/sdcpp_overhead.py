"""What the stable-diffusion.cpp backend costs on top of the raw engine, and what python mode saves.

Three comparisons, measured in the same run and interleaved (A, B, B, A, ...) so that load from
other processes hits both sides alike:

1. CLI mode (``VisionManager.generate_image``) vs a direct ``sd-cli`` process with the same argv;
2. python mode, warm (model already loaded), vs a raw ``StableDiffusion.generate_image`` call on
   its own loaded context;
3. python mode warm vs CLI mode: the model load that python mode saves per call.

It runs on the random-weight SD 1.x checkpoint and the sd-cli / bindings that the tests build
(both cached under ``~/.cache/abstractvision``). Usage::

    PYTHONPATH=src python bench/sdcpp_overhead.py --rounds 5 --steps 1 --size 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _timing import interleave  # noqa: E402

from abstractvision import VisionManager  # noqa: E402
from abstractvision.backends.stable_diffusion_cpp import StableDiffusionCppVisionBackend  # noqa: E402
from fixtures.sd15_checkpoint import ensure_sd15_checkpoint  # noqa: E402
from fixtures.sdcpp import ensure_sd_cli  # noqa: E402

PROMPT = "a lighthouse at dusk"


def summary(name: str, ours: list[float], baseline: list[float], baseline_name: str) -> dict:
    ours_median, base_median = statistics.median(ours), statistics.median(baseline)
    return {
        "comparison": name,
        "median_s": round(ours_median, 3),
        "baseline": baseline_name,
        "baseline_median_s": round(base_median, 3),
        "ratio": round(ours_median / base_median, 3),
        "rounds": len(ours),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    sd_cli = str(ensure_sd_cli())
    checkpoint = str(ensure_sd15_checkpoint())
    params = {"width": args.size, "height": args.size, "steps": args.steps, "seed": 42, "guidance_scale": 7.0}
    size = str(args.size)
    work = Path(tempfile.mkdtemp(prefix="sdcpp-bench-"))

    cli = VisionManager(backend=StableDiffusionCppVisionBackend(model=checkpoint, sd_cli_path=sd_cli, mode="cli"))
    direct_argv = [sd_cli, "-m", checkpoint, "-p", PROMPT, "-W", size, "-H", size, "--steps", str(args.steps)]
    direct_argv += ["-s", "42", "--cfg-scale", "7.0", "-o", str(work / "direct.png")]

    def run_direct() -> bytes:
        subprocess.run(direct_argv, capture_output=True, check=True)
        return (work / "direct.png").read_bytes()

    python_backend = StableDiffusionCppVisionBackend(model=checkpoint, mode="python")
    python_backend.preload()
    python = VisionManager(backend=python_backend)

    import stable_diffusion_cpp

    raw = stable_diffusion_cpp.StableDiffusion(model_path=checkpoint, verbose=False)

    def run_raw():
        return raw.generate_image(
            PROMPT, width=args.size, height=args.size, sample_steps=args.steps, seed=42, cfg_scale=7.0,
            progress_callback=lambda *_: None,  # 0.4.5: always pass one (see _sdcpp_python.py)
        )  # fmt: skip

    # one warm-up each: page cache for the checkpoint, first-call allocations
    cli.generate_image(PROMPT, **params), run_direct(), python.generate_image(PROMPT, **params), run_raw()

    cli_times, direct_times = interleave(args.rounds, lambda: cli.generate_image(PROMPT, **params), run_direct)
    py_times, raw_times = interleave(args.rounds, lambda: python.generate_image(PROMPT, **params), run_raw)
    results = [
        summary("cli mode", cli_times, direct_times, "direct sd-cli process"),
        summary("python mode (warm)", py_times, raw_times, "raw bindings call"),
        summary("python mode (warm)", py_times, cli_times, "cli mode"),
    ]
    print(json.dumps({"steps": args.steps, "size": args.size, "results": results}, indent=2))
    print()
    print("| comparison | median (s) | baseline | baseline median (s) | ratio |")
    print("|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['comparison']} | {row['median_s']} | {row['baseline']} | {row['baseline_median_s']} "
            f"| {row['ratio']} |"
        )
    python_backend.close()
    raw.close()


if __name__ == "__main__":
    main()
