"""What a LoRA call on the Diffusers backend costs on top of Diffusers with the adapter already set.

    PYTHONPATH=src python bench/lora_overhead.py             # ~2 minutes on 2 CPU cores
    PYTHONPATH=src python bench/lora_overhead.py --rounds 9  # fewer timing rounds

For each random-weight pipeline (the tiny one, and a wider one where a call takes about a second
on a CPU) and a random LoRA adapter made for its UNet:

- **raw**: ``StableDiffusionPipeline`` with ``load_lora_weights`` and ``set_adapters`` done once,
  then per call the pipeline call plus PNG encoding at the backend's level (the least any caller does);
- **backend**: ``VisionManager.generate_image(..., lora_adapters=[LoRAAdapterSpec(file, scale)])``
  after a first call that loaded the adapter: validation, finding the file, the adapter keeper's
  check that the active set is unchanged, the call, metadata.

Calls alternate A/B, B/A after a warm-up; medians and their ratio, and the median of the per-pair
ratios (adjacent calls share the machine's load, so it is the steadier figure on a busy machine).
Target: ratio <= 1.05.
It also times one adapter switch (``set_adapters``, and ``disable_lora`` + ``enable_lora``) on
each pipeline: what the backend would add per call if it switched on every call instead of only
when the next call's adapters differ. Everything is built into a temporary folder: no network.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import interleave, timed  # noqa: E402

PROMPT = "a red cat"
SCALE = 0.8
#: (label, scale for build_random_pipeline, width=height, steps)
CASES = (("tiny", 1, 64, 2), ("~1 s", 6, 128, 2))


def time_case(folder: Path, lora: Path, size: int, steps: int, rounds: int) -> dict:
    import torch
    from diffusers import StableDiffusionPipeline

    from abstractvision import LoRAAdapterSpec, VisionManager
    from abstractvision.backends._diffusers_loading import quiet_loading
    from abstractvision.backends.huggingface_diffusers import (
        HuggingFaceDiffusersBackendConfig,
        HuggingFaceDiffusersVisionBackend,
    )

    with quiet_loading():  # float32, as the backend on a CPU
        raw = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    raw.set_progress_bar_config(disable=True)
    raw.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name="style")
    raw.set_adapters(["style"], adapter_weights=[SCALE])
    config = HuggingFaceDiffusersBackendConfig(model_id=str(folder), device="cpu", torch_dtype="float32")
    manager = VisionManager(backend=HuggingFaceDiffusersVisionBackend(config=config))
    adapters = [LoRAAdapterSpec(str(lora), scale=SCALE)]
    seed = [0]

    def raw_call() -> bytes:
        generator = torch.Generator("cpu").manual_seed(seed[0])
        image = raw(PROMPT, width=size, height=size, num_inference_steps=steps, generator=generator).images[0]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def backend_call() -> bytes:
        call = {"seed": seed[0], "width": size, "height": size, "steps": steps}
        return manager.generate_image(PROMPT, lora_adapters=adapters, **call).data

    raw_call(), backend_call()  # load, allocate, the adapter's first load: out of the way
    raw_times, backend_times = interleave(rounds, raw_call, backend_call)
    switches = {
        "set_adapters": statistics.median(
            timed(lambda: raw.set_adapters(["style"], adapter_weights=[SCALE])) for _ in range(rounds)
        ),
        "disable+enable": statistics.median(
            timed(lambda: (raw.disable_lora(), raw.enable_lora())) for _ in range(rounds)
        ),
    }
    manager.close()
    raw_median, backend_median = statistics.median(raw_times), statistics.median(backend_times)
    paired = statistics.median(b / r for b, r in zip(backend_times, raw_times, strict=True))
    return {
        "raw_s": raw_median,
        "backend_s": backend_median,
        "ratio": backend_median / raw_median,
        "paired": paired,
        **switches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=41, help="tiny pipeline; the ~1 s one runs half as many")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides (1: least noise)")
    args = parser.parse_args()
    import torch
    from diffusers.utils import logging as diffusers_logging

    from abstractvision.testing import build_random_lora, build_random_pipeline

    torch.set_num_threads(args.threads)
    diffusers_logging.set_verbosity_error()  # the raw side's loading notices; the backend hides its own
    diffusers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Already found a `peft_config`")
    print(f"torch threads: {args.threads}, adapter scale {SCALE}, medians of interleaved calls")
    print(
        "| pipeline | size, steps | raw Diffusers, adapter set (median) | backend via VisionManager (median) "
        "| ratio | paired ratio | one set_adapters | disable+enable |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for label, scale, size, steps in CASES:
            folder = build_random_pipeline(Path(scratch) / f"scale{scale}", scale=scale)
            lora = build_random_lora(folder, Path(scratch) / f"lora{scale}", seed=1)
            rounds = args.rounds if label == "tiny" else max(5, args.rounds // 2)
            r = time_case(folder, lora, size, steps, rounds)
            print(
                f"| {label} | {size}x{size}, {steps} | {r['raw_s'] * 1000:.1f} ms | {r['backend_s'] * 1000:.1f} ms "
                f"| {r['ratio']:.3f} | {r['paired']:.3f} | {r['set_adapters'] * 1000:.2f} ms "
                f"| {r['disable+enable'] * 1000:.2f} ms |"
            )


if __name__ == "__main__":
    main()
