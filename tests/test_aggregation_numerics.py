"""Numerics of the window aggregation (features.aggregate_windows) against exact statistics.

The comparison with the reference pandas loop (test_features.py) uses data centred on zero,
where a one-pass variance E[x^2] - E[x]^2 is as good as the two-pass one. Here the frames sit
on large offsets (openSMILE's spectral descriptors are in the thousands, energies can be
tiny), constant descriptors must give a deviation of (near) zero (exactly 0 for a constant 0,
within the rounding of the mean otherwise, as the docstring says), and every window is compared with Python's `statistics`, whose
pstdev/fmean are computed exactly (rationals / fsum) before one final rounding.
"""
from __future__ import annotations

import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trompa_mer import features as F


def exact_windows(llds: np.ndarray) -> np.ndarray:
    """(rows, 2 * columns): pstdev and mean of frames [50 r, 50 r + 101), interleaved."""
    n, cols = llds.shape
    rows = -(-n // 50)
    out = np.empty((rows, 2 * cols))
    for r in range(rows):
        window = llds[50 * r:50 * r + 101]
        for c in range(cols):
            values = [float(v) for v in window[:, c]]
            out[r, 2 * c] = statistics.pstdev(values)
            out[r, 2 * c + 1] = statistics.fmean(values)
    return out


@pytest.mark.parametrize("offset", [1e4, 1e8, -3e9])
def test_large_offset_keeps_the_deviation(offset):
    rng = np.random.default_rng(7)
    llds = offset + rng.normal(scale=0.01, size=(237, 3))
    ours = F.aggregate_windows(llds)
    exact = exact_windows(llds)
    assert ours.shape == (5, 6)
    # a one-pass variance loses every digit here (offset^2 * 1e-16 >> 1e-4)
    np.testing.assert_allclose(ours[:, 0::2], exact[:, 0::2], rtol=1e-6, atol=0)
    np.testing.assert_allclose(ours[:, 1::2], exact[:, 1::2], rtol=1e-15, atol=0)
    assert np.all(ours[:, 0::2] > 0.005)


@pytest.mark.parametrize("value", [0.0, 0.1, -7.77, 1e8 + 0.3, 3.3e-12, 12345.678])
def test_constant_descriptor_has_zero_deviation(value):
    llds = np.full((237, 2), value)
    llds[:, 1] = np.linspace(-1, 1, 237)  # a varying neighbour column
    out = F.aggregate_windows(llds)
    std, mean = out[:, 0], out[:, 1]
    assert np.all(np.isfinite(out))
    # zero up to the rounding of one mean (a one-pass formula gives ~1e-8 * |value| or NaN)
    assert np.all(std <= 1e-14 * abs(value)), std
    if value == 0.0:
        assert np.all(std == 0.0)
    np.testing.assert_allclose(mean, value, rtol=1e-14, atol=0)
    assert np.all(out[:, 2] > 0.01)


def test_constant_stretch_inside_a_varying_descriptor():
    """Frames 0..150 constant, then a ramp: rows 0 and 1 cover only constant frames."""
    llds = np.full((300, 1), 440.0)
    llds[151:, 0] = 440.0 + np.arange(149)
    out = F.aggregate_windows(llds)
    assert out.shape == (6, 2)
    assert out[0, 0] == 0.0 and out[1, 0] == 0.0
    exact = exact_windows(llds)
    np.testing.assert_allclose(out[2:], exact[2:], rtol=1e-12)


def test_short_last_windows_ignore_the_padding():
    llds = np.arange(1, 121, dtype=float)[:, None] * np.array([[1.0, -2.0]]) + 1e6
    out = F.aggregate_windows(llds)
    exact = exact_windows(llds)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, exact, rtol=1e-12)
    # row 2 holds frames 100..119 only: mean 1e6 + 110.5, sd of 20 consecutive numbers
    assert out[2, 1] == pytest.approx(1e6 + 110.5, rel=1e-15)
    assert out[2, 0] == pytest.approx(np.sqrt((20 ** 2 - 1) / 12), rel=1e-12)


def test_float32_frames_are_aggregated_in_float64():
    llds = (1e4 + np.random.default_rng(3).normal(size=(120, 2))).astype(np.float32)
    out = F.aggregate_windows(llds)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, exact_windows(llds.astype(np.float64)), rtol=1e-12)


def test_single_frame_and_exact_multiples():
    one = F.aggregate_windows(np.array([[5.5, -1.0]]))
    np.testing.assert_array_equal(one, [[0.0, 5.5, 0.0, -1.0]])
    for n in (50, 100, 101, 150):
        llds = np.random.default_rng(n).normal(size=(n, 2)) * 1e3 + 1e7
        out = F.aggregate_windows(llds)
        assert out.shape == (-(-n // 50), 4)
        np.testing.assert_allclose(out, exact_windows(llds), rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=1, max_value=240), cols=st.integers(min_value=1, max_value=3),
       offset=st.sampled_from([0.0, 1e3, -1e6, 1e9]), scale=st.sampled_from([1e-3, 1.0, 1e2]),
       seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_every_window_equals_exact_statistics(n, cols, offset, scale, seed):
    llds = offset + scale * np.random.default_rng(seed).standard_normal((n, cols))
    out = F.aggregate_windows(llds)
    exact = exact_windows(llds)
    assert out.shape == exact.shape
    # both may lose digits only through the float64 rounding of the frames themselves (a mean
    # near 0 has no relative precision, so an absolute bound in units of the data's size)
    tolerance = 1e-15 * (abs(offset) + 10 * scale) * 20
    np.testing.assert_allclose(out[:, 1::2], exact[:, 1::2], rtol=1e-14, atol=tolerance)
    np.testing.assert_allclose(out[:, 0::2], exact[:, 0::2], rtol=1e-9, atol=tolerance)
