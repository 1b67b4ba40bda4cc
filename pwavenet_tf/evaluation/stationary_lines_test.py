import math

import numpy as np
import pytest

from pwavenet_tf.evaluation.stationary_lines import (long_term_spectrum_db, narrow_excess_db,
                                                     stationary_lines)

SR = 22050
N = 4096


def _noise(seed, n=SR * 4, std=0.01):
    return np.random.default_rng(seed).normal(0.0, std, n)


def test_white_noise_ltas_is_its_variance():
    # The periodogram is normalised by the window energy: white noise of variance v gives v.
    ltas = long_term_spectrum_db(_noise(0, SR * 20), N)
    assert np.median(ltas[10:-10]) == pytest.approx(10 * math.log10(1e-4), abs=0.2)


def test_identical_signals_have_no_line():
    x = _noise(1)
    out = stationary_lines([(x, x)], SR)
    assert out["line_db"] == 0.0 and out["low_band_excess_db"] == 0.0


def test_a_tone_on_every_clip_is_found_at_its_height():
    # A sine of amplitude a on a bin centre adds a^2 N / 6 to that bin of white noise of
    # variance s^2 (Hann: (sum w)^2 / sum w^2 = N * 2/3, times a^2/4).
    k = 32  # 172.27 Hz: the frame rate's second harmonic at hop 256
    freq = k * SR / N
    a, s = 0.002, 0.01
    t = np.arange(SR * 4) / SR
    pairs = [(_noise(10 + i) + a * np.sin(2 * np.pi * freq * t + i), _noise(20 + i))
             for i in range(4)]
    out = stationary_lines(pairs, SR)
    expected = 10 * math.log10(1 + a * a * N / 6 / (s * s))
    assert out["line_hz"] == pytest.approx(freq)
    assert out["line_db"] == pytest.approx(expected, abs=0.6)
    # The same clips without the tone: only chance fluctuations of the averaged spectra.
    quiet = stationary_lines([(_noise(10 + i), _noise(20 + i)) for i in range(4)], SR)
    assert quiet["line_db"] < 2.0


def test_dc_offset_shows_below_20_hz():
    real = _noise(3)
    out = stationary_lines([(real + 0.005, real)], SR)
    assert out["dc_offset"] == pytest.approx(np.mean(real) + 0.005)
    assert out["low_band_excess_db"] > 12.0
    assert stationary_lines([(_noise(4), real)], SR)["low_band_excess_db"] < 3.0


def test_uniform_level_mismatch_is_not_a_line():
    real = _noise(5)
    excess, narrow = narrow_excess_db(3.0 * _noise(6), real, SR)
    assert np.median(excess) == pytest.approx(20 * math.log10(3.0), abs=0.3)
    assert np.max(np.abs(narrow[10:-10])) < 4.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same length"):
        stationary_lines([(np.zeros(N + 1), np.zeros(N))], SR)
    with pytest.raises(ValueError, match="shorter than one FFT frame"):
        long_term_spectrum_db(np.zeros(100), N)
    with pytest.raises(ValueError, match="empty"):
        stationary_lines([], SR)
    with pytest.raises(ValueError, match="NaN"):
        long_term_spectrum_db(np.full(N, np.nan), N)
