"""Tools for testing abstractvision and the backends written for it.

* :mod:`abstractvision.testing.pipelines` (re-exported here): small random-weight Stable Diffusion
  pipelines (and an x4 upscale pipeline) built offline, for tests, demos and benchmarks (need the
  ``diffusers`` extra when called).
* :mod:`abstractvision.testing.contract`: the backend contract suite, a pytest base class a backend's
  own tests subclass. It imports pytest, so it is imported only by test code, never from here.
"""

from __future__ import annotations

from .pipelines import (
    build_random_lora,
    build_random_pipeline,
    build_tiny_pipeline,
    build_tiny_upscale_pipeline,
    write_clip_tokenizer_files,
)

__all__ = [
    "build_random_lora",
    "build_random_pipeline",
    "build_tiny_pipeline",
    "build_tiny_upscale_pipeline",
    "write_clip_tokenizer_files",
]
