"""Stationary lines in a vocoder's output: a DC offset and narrow tones that real speech lacks.

A spectrogram shows them as horizontal lines through whole clips. They are measured on the
long-term average spectrum (LTAS: Welch's average of periodic-Hann periodograms, in dB) of
each resynthesis `g` against that of its real clip `y`:

    excess[k]  = LTAS_g[k] - LTAS_y[k]                          (dB, per bin)
    narrow[k]  = excess[k] - median(excess[k - w .. k + w])     (w ~ `neighbourhood_hz`)

`narrow` is how far the resynthesis rises above its own broadband mismatch around bin k: a
stationary tone gives a large value at its frequency, a resynthesis that is uniformly too
loud or too quiet in a band does not. On one clip `narrow` also picks up chance mismatches
of pitch harmonics (Griffin-Lim reaches 8-12 dB at scattered frequencies on the
`ljspeech_mini` held-out clips), so `stationary_lines` averages it over clips: a line that
the vocoder adds to every clip at the same frequency survives the average, chance
mismatches do not (Griffin-Lim's strongest averaged line there: 5.4 dB).

Figures (`stationary_lines`):
- `line_db`, `line_hz`: the strongest averaged narrow line in [`min_hz`, `max_hz`];
- `low_band_excess_db`: the mean excess below `low_hz` (a DC offset or slow drift);
- `dc_offset`: the mean sample value of the resyntheses (real speech: ~0).

Plain numpy (evaluation code, no gradient).
"""

import numpy as np

__all__ = ["long_term_spectrum_db", "narrow_excess_db", "stationary_lines"]


def long_term_spectrum_db(audio, fft_size=4096):
    """LTAS in dB `[fft_size // 2 + 1]` of mono `audio`: Welch's average of periodic-Hann
    periodograms with hop `fft_size // 4`, floored at -200 dB."""
    audio = np.asarray(audio, dtype="float64").reshape(-1)
    if not np.all(np.isfinite(audio)):
        raise ValueError("`audio` contains NaN or Inf.")
    if audio.shape[0] < fft_size:
        raise ValueError(
            f"`audio` is shorter than one FFT frame. Received: {audio.shape[0]} samples, "
            f"fft_size={fft_size}")
    hop = fft_size // 4
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(fft_size) / fft_size)
    starts = np.arange(0, audio.shape[0] - fft_size + 1, hop)
    frames = np.stack([audio[s:s + fft_size] for s in starts]) * window
    power = np.mean(np.abs(np.fft.rfft(frames, axis=-1)) ** 2, axis=0) / np.sum(window ** 2)
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def narrow_excess_db(generated, real, sample_rate, fft_size=4096, neighbourhood_hz=150.0):
    """`(excess, narrow)` in dB per LTAS bin of one resynthesis against its real clip."""
    generated = np.asarray(generated, dtype="float64").reshape(-1)
    real = np.asarray(real, dtype="float64").reshape(-1)
    if generated.shape != real.shape:
        raise ValueError(
            "The two signals must have the same length. Received: "
            f"len(generated)={generated.shape[0]}, len(real)={real.shape[0]}")
    excess = long_term_spectrum_db(generated, fft_size) - long_term_spectrum_db(real, fft_size)
    w = max(1, int(round(neighbourhood_hz * fft_size / sample_rate)))
    padded = np.pad(excess, w, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)
    return excess, excess - np.median(windows, axis=-1)


def stationary_lines(pairs, sample_rate, fft_size=4096, neighbourhood_hz=150.0, min_hz=40.0,
                     max_hz=8000.0, low_hz=20.0):
    """The stationary-line figures (module docstring) of `pairs`, a list of
    `(generated, real)` mono clips of equal lengths. Returns a dict of floats."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("`pairs` is empty: give at least one (generated, real) pair.")
    if not 0 <= min_hz < max_hz <= sample_rate / 2:
        raise ValueError(f"Need 0 <= min_hz < max_hz <= sample_rate / 2. Received: "
                         f"min_hz={min_hz}, max_hz={max_hz}, sample_rate={sample_rate}")
    excess, narrow = zip(*(narrow_excess_db(g, y, sample_rate, fft_size, neighbourhood_hz)
                           for g, y in pairs))
    narrow = np.mean(narrow, axis=0)
    bin_hz = sample_rate / fft_size
    first, last = int(np.ceil(min_hz / bin_hz)), int(np.floor(max_hz / bin_hz))
    peak = first + int(np.argmax(narrow[first:last + 1]))
    low = max(1, int(np.floor(low_hz / bin_hz)))
    return {
        "line_db": float(narrow[peak]),
        "line_hz": float(peak * bin_hz),
        "low_band_excess_db": float(np.mean(np.asarray(excess)[:, :low])),
        "dc_offset": float(np.mean([np.mean(np.asarray(g, "float64")) for g, _ in pairs])),
    }
