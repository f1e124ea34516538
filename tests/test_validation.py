"""Example-based checks of the shared rules in ``validation.py`` (the fuzz tests cover the rest)."""

from __future__ import annotations

import pytest

from abstractvision.errors import InvalidRequestError
from abstractvision.validation import check_c_text, check_seed, check_size_step, random_seed


@pytest.mark.parametrize(
    ("value", "step", "low", "high", "nearest"),
    [
        (100, 8, 64, 4096, "96 or 104"),
        (32, 8, 64, 4096, "64"),  # under the minimum: the smallest valid size
        (5000, 8, 64, 4096, "4096"),  # over the maximum: the largest
        (65, 2, None, None, "64 or 66"),
        (1000, 16, 64, 4096, "992 or 1008"),
        (100, 8, 250, 2048, "256"),  # the smallest multiple at or above the minimum
    ],
)
def test_a_size_off_the_grid_names_the_nearest_valid_sizes(value, step, low, high, nearest):
    with pytest.raises(InvalidRequestError) as info:
        check_size_step("width", value, step, low, high, label="image width", subject="this model")
    assert info.value.field == "width"
    assert str(info.value).startswith(f"image width: {value} is not a size this model can take")
    assert str(info.value).endswith(f"nearest valid: {nearest}")


@pytest.mark.parametrize(
    ("value", "step", "low", "high"), [(64, 8, 64, 4096), (4096, 16, 64, 4096), (66, 2, None, None)]
)
def test_a_size_on_the_grid_passes(value, step, low, high):
    check_size_step("width", value, step, low, high)


def test_seeds_are_checked_against_the_given_maximum():
    check_seed("seed", 2**40, maximum=2**40)
    with pytest.raises(InvalidRequestError, match=r"0\.\.255"):
        check_seed("seed", 256, maximum=255)
    assert all(0 <= random_seed(3) <= 3 for _ in range(50))


@pytest.mark.parametrize(("text", "index"), [("a\x00b", "index 1"), ("a \ud800", "index 2")])
def test_text_no_engine_can_carry_is_refused_by_field(text, index):
    with pytest.raises(InvalidRequestError, match=index) as info:
        check_c_text("extra['sampler']", text)
    assert info.value.field == "extra['sampler']"
