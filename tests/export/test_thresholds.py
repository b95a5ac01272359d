"""Float32 tree thresholds: rounding each LightGBM float64 threshold down keeps every decision."""

from __future__ import annotations

import numpy as np
import pytest

from export.convert import float32_threshold


@pytest.mark.parametrize("seed", range(3))
def test_rounding_down_keeps_every_float32_decision(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for threshold in rng.normal(0, 1e5, 300).tolist() + rng.uniform(-1, 1, 300).tolist():
        rounded = float32_threshold(threshold)
        assert np.float32(rounded) == rounded and rounded <= threshold  # a float32, not above
        assert float(np.nextafter(np.float32(rounded), np.float32(np.inf))) > threshold  # the largest such
        near = np.float32(threshold)
        for x in (np.nextafter(near, np.float32(-np.inf)), near, np.nextafter(near, np.float32(np.inf))):
            assert (float(x) <= threshold) == (x <= np.float32(rounded))


def test_a_threshold_that_is_already_a_float32_is_kept() -> None:
    assert float32_threshold(0.5) == 0.5
    assert float32_threshold(float(np.float32(0.1))) == float(np.float32(0.1))


def test_nearest_rounding_would_flip_a_decision() -> None:
    """Why the rounding matters: the nearest float32 can lie above the float64 threshold."""
    threshold = 0.1  # np.float32(0.1) > 0.1
    x = np.float32(0.1)
    assert float(x) > threshold  # LightGBM sends x right
    assert x <= np.float32(threshold)  # the nearest float32 threshold would send it left
    assert not x <= np.float32(float32_threshold(threshold))  # rounded down: right, as LightGBM
