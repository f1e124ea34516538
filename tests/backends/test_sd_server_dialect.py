"""The OpenAI backend against the real sd-server 0.4.5 (random SD 1.x weights), with no dialect configured.

What must hold on the engine itself: ``auto`` picks ``sdcpp``; the portable controls reach the sampler
(same seed, same pixels; another seed, steps or negative prompt, other pixels); edits use the image
(with and without a mask) through sd-server's img2img. 64x64 and 1-2 steps: ~1.1 s a step here.
"""

from __future__ import annotations

import io
import time

import pytest

from abstractvision import VisionManager
from abstractvision.backends.openai_compatible import OpenAICompatibleBackendConfig, OpenAICompatibleVisionBackend
from fixtures.images import make_png

pytestmark = pytest.mark.slow

SMALL = {"width": 64, "height": 64, "steps": 1}


def pixels(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (64, 64)
        return image.convert("RGB").tobytes()


@pytest.fixture(scope="module")
def manager(sd_server):
    backend = OpenAICompatibleVisionBackend(config=OpenAICompatibleBackendConfig(base_url=sd_server.base_url))
    with VisionManager(backend=backend) as vm:
        yield vm


@pytest.fixture(scope="module")
def made(manager):
    """Generations shared by the tests (each costs seconds): ``made(seed=7, steps=1)`` makes one once."""
    cache: dict[tuple, object] = {}

    def make(**params):
        key = tuple(sorted(params.items()))
        if key not in cache:
            cache[key] = manager.generate_image("a lighthouse", width=64, height=64, **params)
        return cache[key]

    return make


@pytest.mark.timeout(600)  # the first use in a session may build sd-server and the checkpoint
def test_auto_picks_sdcpp_and_the_seed_reaches_the_sampler(manager, made):
    started = time.monotonic()
    first = made(seed=7, steps=1)
    again = manager.generate_image("a lighthouse", seed=7, **SMALL)
    other = made(seed=8, steps=1)
    assert first.metadata["dialect"] == "sdcpp" and first.metadata["seed"] == 7
    assert pixels(first.data) == pixels(again.data)
    assert pixels(first.data) != pixels(other.data)
    assert time.monotonic() - started < 60


@pytest.mark.timeout(120)
def test_steps_and_negative_prompt_change_the_result(made):
    base = pixels(made(seed=7, steps=1).data)
    two_steps = made(seed=7, steps=2)
    negative = made(seed=7, steps=1, negative_prompt="fog, rain")
    assert pixels(two_steps.data) != base and pixels(negative.data) != base
    assert two_steps.metadata["steps"] == 2 and negative.metadata["negative_prompt"] == "fog, rain"


@pytest.mark.timeout(120)
def test_edits_use_the_image_with_and_without_a_mask(manager, made):
    from PIL import Image

    plain = pixels(made(seed=7, steps=2).data)
    red = make_png(64, 64, color=(220, 30, 30))
    edited = manager.edit_image("a lighthouse", red, seed=7, steps=2, extra={"strength": 0.5})
    half = Image.new("L", (64, 64), 0)
    half.paste(255, (0, 0, 32, 64))  # repaint the left half only
    buffer = io.BytesIO()
    half.save(buffer, format="PNG")
    mask = buffer.getvalue()
    masked = manager.edit_image("a lighthouse", red, mask=mask, seed=7, steps=2, extra={"strength": 0.5})
    assert edited.metadata["endpoint"] == "/sdapi/v1/img2img"
    assert pixels(edited.data) != plain  # the input image was used, not ignored as /v1/images/edits does
    assert pixels(masked.data) != pixels(edited.data)
