"""Property test of request validation: whatever a caller passes, the manager either refuses it with
:class:`InvalidRequestError` before the backend runs, or the backend gets a request whose fields
are all valid. Nothing else may escape: no TypeError, OverflowError, OSError, MemoryError, nor a
ValueError that is not InvalidRequestError. A batch makes at most MAX_BATCH_ITEMS items.

Deterministic (``derandomize``, no example database) so CI sees the same examples every run.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abstractvision import VisionManager
from abstractvision.backends import VisionBackend
from abstractvision.errors import InvalidRequestError
from abstractvision.media import inspect_image
from abstractvision.types import DEFAULT_MAX_SEED, GeneratedAsset, VisionBackendCapabilities
from abstractvision.validation import MAX_BATCH_ITEMS, MAX_INT, MAX_PROMPT_CHARS
from fixtures.images import make_jpeg, make_png

PNG = make_png(16, 16)
MASK = make_png(16, 16, mode="L")
JPEG = make_jpeg(16, 16)
LIMITS = {"width": 1024, "height": 1024, "fps": 60, "num_frames": 240}
ALL_TASKS = ("text_to_image", "image_to_image", "text_to_video", "image_to_video", "multi_view_image", "image_upscale")

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_text(value: Any, required: bool) -> None:
    if value is None:
        assert not required
        return
    assert isinstance(value, str) and len(value) <= MAX_PROMPT_CHARS and "\x00" not in value
    value.encode("utf-8")  # no lone surrogates
    assert value.strip() or not required


def check_int(value: Any, low: int, high: int) -> None:
    assert value is None or (type(value) is int and low <= value <= high), value


def check_number(value: Any, low: float, high: float = math.inf) -> None:
    if value is not None:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), value
        assert math.isfinite(float(value)) and low <= value <= high, value


def check_image(value: Any, required: bool) -> None:
    if value is None:
        assert not required
        return
    assert isinstance(value, bytes)
    inspect_image(value)


class CheckingBackend(VisionBackend):
    """Every task, with stated limits; asserts each request it gets is valid, then makes a PNG."""

    name = "checking"

    def __init__(self) -> None:
        self.calls = 0

    def get_capabilities(self) -> VisionBackendCapabilities:
        return VisionBackendCapabilities(
            supported_tasks=ALL_TASKS,
            supports_mask=True,
            supports_control_image=True,
            max_width=LIMITS["width"],
            max_height=LIMITS["height"],
            max_fps=LIMITS["fps"],
            max_frames=LIMITS["num_frames"],
        )

    def _check(self, task: str, request: Any) -> GeneratedAsset:
        self.calls += 1
        fields = request.__dataclass_fields__
        check_text(getattr(request, "prompt", None), required=task not in ("image_to_video", "image_upscale"))
        check_text(getattr(request, "negative_prompt", None), required=False)
        for name, limit in LIMITS.items():
            if name in fields:
                check_int(getattr(request, name), 1, limit)
        if "steps" in fields:
            check_int(request.steps, 1, MAX_INT)
        check_int(request.seed, 0, DEFAULT_MAX_SEED)
        if "guidance_scale" in fields:
            check_number(request.guidance_scale, 0)
        if "control_strength" in fields:
            check_number(request.control_strength, 0, 2)
            check_image(request.control_image, required=False)
        if "image" in fields:
            check_image(request.image, required=True)
        if "mask" in fields:
            check_image(request.mask, required=False)
        if "reference_image" in fields:
            check_image(request.reference_image, required=False)
            assert request.angles
            for angle in request.angles:
                check_text(angle, required=True)
        if task == "image_upscale":
            check_number(request.scale, 1, 16)
            if request.resolution is not None:  # an upscale's result may exceed the generation limits
                assert len(request.resolution) == 2 and request.scale is None
                info = inspect_image(request.image)
                check_int(request.resolution[0], info.width, MAX_INT)
                check_int(request.resolution[1], info.height, MAX_INT)
        assert isinstance(request.extra, dict)
        for key, value in request.extra.items():
            assert isinstance(key, str) and key and not callable(value)
        return GeneratedAsset("image", PNG, "image/png", {"seed": request.seed})

    def generate_image(self, request):
        return self._check("text_to_image", request)

    def edit_image(self, request):
        return self._check("image_to_image", request)

    def generate_video(self, request):
        return self._check("text_to_video", request)

    def image_to_video(self, request):
        return self._check("image_to_video", request)

    def generate_angles(self, request):
        return [self._check("multi_view_image", request)]

    def upscale_image(self, request):
        return self._check("image_upscale", request)


# ---- strategies: each field is valid most of the time and hostile otherwise ---------------------
# (so that many requests are wholly valid and reach the backend, and every hostile value is tried)
any_char = st.characters(exclude_categories=())  # surrogates and control characters included
texts = st.one_of(
    st.text(any_char, max_size=40),
    st.text(st.sampled_from("a \x00\ud800\udfff\n\t"), max_size=8),
    st.sampled_from(["", "   ", "x" * MAX_PROMPT_CHARS, "x" * (MAX_PROMPT_CHARS + 1), "\U0001f431" * 9000]),
)
huge_ints = st.sampled_from([2**31 - 1, 2**31, 2**32, 2**63, 2**64, 10**400, -(10**400), 10**5000])
numbers = st.one_of(
    st.integers(-3, 2000),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -0.0, 1e308, 5e-324]),
    st.booleans(),
)
scalars = st.one_of(
    st.none(), numbers, texts, st.binary(max_size=8), st.complex_numbers(), st.decimals(), st.fractions()
)
hostile = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.sampled_from([print, object(), {"$artifact": "x"}, range(10**12)]),
)
hostile_images = st.one_of(
    st.integers(0, len(PNG) - 1).map(lambda n: PNG[:n]),  # truncated
    st.binary(max_size=64),
    st.just(b"\x89PNG\r\n\x1a\n" + bytes(64)),  # a PNG signature and nothing valid after it
    st.just(make_png(8, 8)),  # valid, but not the size of the mask
    st.sampled_from(["/no/such/file.png", "", ".", "\x00", "\ud800", "a" * 5000, "/dev/null", "/", "~nosuch-user/x"]),
    hostile,
)


def field(valid, bad=hostile):
    """``valid`` five times in six, ``bad`` otherwise."""
    return st.integers(0, 5).flatmap(lambda n: bad if n == 0 else valid)


prompt = field(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=30).filter(
        str.strip
    ),
    st.one_of(texts, hostile),
)
image = field(st.sampled_from([PNG, JPEG]), hostile_images)
common = {
    "negative_prompt": field(st.one_of(st.none(), prompt)),
    "seed": field(st.integers(0, DEFAULT_MAX_SEED)),
    "steps": field(st.integers(1, 50)),
    "guidance_scale": field(st.one_of(st.floats(0, 30), st.integers(0, 30))),
    "extra": field(
        st.dictionaries(st.text(min_size=1, max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=2),
        st.one_of(
            st.dictionaries(st.one_of(texts, st.integers(), st.none()), hostile, min_size=1, max_size=2), hostile
        ),
    ),
    "unknown_option": field(st.integers()),  # an unknown keyword goes to extra
}
sizes = {"width": field(st.integers(1, 1024)), "height": field(st.integers(1, 1024))}
video = {**sizes, "fps": field(st.integers(1, 60)), "num_frames": field(st.integers(1, 240))}

CALLS = {
    "generate_image": st.fixed_dictionaries(
        {"prompt": prompt},
        optional={**common, **sizes, "control_image": image, "control_strength": field(st.floats(0, 2))},
    ),
    "edit_image": st.fixed_dictionaries(
        {"prompt": prompt, "image": image},
        optional={**common, "mask": field(st.just(MASK), hostile_images)},
    ),
    "generate_video": st.fixed_dictionaries({"prompt": prompt}, optional={**common, **video}),
    "image_to_video": st.fixed_dictionaries({"image": image}, optional={**common, **video, "prompt": prompt}),
    "generate_angles": st.fixed_dictionaries(
        {"prompt": prompt},
        optional={**common, "reference_image": image, "angles": field(st.lists(prompt, min_size=1, max_size=3))},
    ),
    "upscale_image": st.fixed_dictionaries(
        {"image": image},
        optional={
            **common,
            "scale": field(st.floats(1, 16)),
            "resolution": field(st.tuples(st.integers(1, 1024), st.integers(1, 1024))),
            "prompt": prompt,
        },
    ),
}
BATCHES = ("generate_image_batch", "edit_image_batch", "generate_video_batch")


def call(method: str, kwargs: dict[str, Any]) -> None:
    backend = CheckingBackend()
    try:
        getattr(VisionManager(backend=backend), method)(**kwargs)
    except InvalidRequestError as exc:
        assert backend.calls == 0, f"{method} raised {exc!r} after the backend ran"
        assert exc.field, f"{exc!r} names no field"
    assert backend.calls <= MAX_BATCH_ITEMS


@pytest.mark.timeout(300)
@FUZZ
@given(st.sampled_from(sorted(CALLS)).flatmap(lambda m: st.tuples(st.just(m), CALLS[m])))
def test_every_request_is_refused_with_invalid_request_error_or_reaches_the_backend_valid(case):
    method, kwargs = case
    call(method, kwargs)


@pytest.mark.timeout(300)
@FUZZ
@given(
    method=st.sampled_from(BATCHES),
    count=field(st.one_of(st.none(), st.integers(1, 4)), st.one_of(hostile, st.sampled_from([10**6, 10**12]))),
    seeds=field(
        st.one_of(st.none(), st.lists(st.integers(0, DEFAULT_MAX_SEED), min_size=1, max_size=4)),
        st.one_of(
            st.lists(st.one_of(st.integers(0, 9), hostile), max_size=4), st.just(range(MAX_BATCH_ITEMS + 1)), hostile
        ),
    ),
    seed=common["seed"],
)
def test_batch_plans_are_refused_or_bounded(method, count, seeds, seed):
    kwargs: dict[str, Any] = {"prompt": "a cat", "count": count, "seeds": seeds, "seed": seed}
    if method == "edit_image_batch":
        kwargs["image"] = PNG
    call(method, kwargs)
