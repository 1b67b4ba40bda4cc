"""Power loss of Parallel WaveNet: squared error of the time-averaged power spectrum.

Without it the distilled student "whispers": low-volume output can still satisfy the
probability-density-distillation KL, because the teacher assigns decent likelihood to quiet
audio. The power loss compares the average energy in every frequency bin of the generated
audio `g` with that of the real utterance `y` for the same conditioning:

    phi(x)[k] = mean_t |STFT(x)[t, k]|^2 / sum_n w[n]^2        (w: periodic Hann window)
    L_N       = mean_batch  sum_k (phi(g)[k] - phi(y)[k])^2      (for one FFT size N)
    loss      = sum over fft_sizes of L_N

Normalisation. Dividing by the window energy `sum w^2` makes `phi` a power spectral density
in "variance per bin": white noise of variance v gives phi[k] ~= v in every bin, whatever
the FFT size. The per-resolution term is the plain squared Euclidean norm over the
`N // 2 + 1` bins, i.e. the paper's `|| . ||^2`. Measured on LJ Speech clip LJ001-0001
(RMS 0.097, 22,050 Hz), a whisper-level mismatch (`0.1 * y` vs `y`) gives about 1.49,
0.32 and 0.07 for N = 2048, 512 and 128 (total 1.88), while adding white noise of std 0.01
gives ~3e-5 in total: the loss is O(1) exactly for the failure it must catch and
negligible for small waveform differences.

With `log_floor` set, the spectra are compared as `log(max(phi, log_floor))` and the
per-resolution term is the *mean* over bins (each bin is already O(1) in the log domain;
the whisper mismatch then gives ~ln(100)^2 ~= 21 per resolution). The default (None) is
the paper's linear-power loss.

Short clips: audio shorter than an FFT size is zero-padded at the end to that size (so
there is always at least one frame); both signals go through the same padding, so identical
inputs still give exactly 0. Longer audio uses the frames that fit entirely (no centring or
end padding), so every frame sees real samples only.

`PowerLoss` is a plain callable (not a `keras.losses.Loss`, whose `(y_true, y_pred)`
argument order and reduction machinery do not fit a loss of two generated/real signals);
it is registered Keras-serializable through `get_config` / `from_config`. It always
computes in float32 and works with unknown batch size and length (inside `tf.function`).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

__all__ = ["PowerLoss", "average_power_spectrum", "power_spectrogram"]


def _check_fft_size(fft_size: Any) -> int:
    if isinstance(fft_size, bool) or not isinstance(fft_size, int) or fft_size < 2:
        raise ValueError(f"FFT sizes must be integers >= 2. Received: fft_size={fft_size!r}")
    return fft_size


def _as_audio(x: Any, name: str) -> Any:
    x = ops.convert_to_tensor(x)
    if len(x.shape) != 2:
        raise ValueError(
            f"`{name}` must be audio of shape [batch, samples]. Received: {name}.shape={x.shape}"
        )
    return ops.cast(x, "float32")


def average_power_spectrum(audio: Any, fft_size: int, hop: int) -> Any:
    """Time-averaged power spectral density `[batch, fft_size // 2 + 1]` of `[batch, T]` audio.

    `mean_t |STFT|^2 / sum(w^2)` with a periodic Hann window of `fft_size` samples and a
    frame step of `hop`; audio shorter than `fft_size` is zero-padded at the end to
    `fft_size`. Differentiable, float32, dynamic shapes.
    """
    fft_size = _check_fft_size(fft_size)
    if isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
        raise ValueError(f"`hop` must be an integer >= 1. Received: hop={hop!r}")
    return ops.mean(power_spectrogram(audio, fft_size, hop), axis=1)


def power_spectrogram(audio: Any, fft_size: int, hop: int, win_length: int | None = None) -> Any:
    """Per-frame power spectral density `[batch, frames, fft_size // 2 + 1]`.

    `|STFT|^2 / sum(w^2)`, periodic Hann window of `win_length` samples (default
    `fft_size`; a shorter window sits centred in each `fft_size` frame, as `torch.stft`
    places it for Parallel WaveGAN's resolutions), frames of `fft_size` samples that fit
    entirely (audio shorter than that is zero-padded at the end to one frame).
    """
    fft_size = _check_fft_size(fft_size)
    win = fft_size if win_length is None else _check_fft_size(win_length)
    if win > fft_size:
        raise ValueError(f"`win_length` must be <= fft_size={fft_size}. Received: win_length={win}")
    audio = _as_audio(audio, "audio")
    pad = ops.maximum(fft_size - ops.shape(audio)[1], 0)
    audio = ops.pad(audio, [[0, 0], [0, pad]])
    real, imag = ops.stft(audio, win, hop, fft_size, window="hann", center=False)
    # sum of the squared periodic Hann window of length W is 3W/8 exactly.
    return (ops.square(real) + ops.square(imag)) / (3.0 * win / 8.0)


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class PowerLoss:
    """Multi-resolution power loss `loss(generated, real) -> scalar` (see module docstring).

    Args:
        fft_sizes: FFT (= window) sizes; one term per size, summed.
        hop_ratio: frame step as a fraction of the FFT size, in (0, 1].
        log_floor: None for the paper's linear power loss; a positive float compares
            `log(max(phi, log_floor))` instead (mean over bins).
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = (2048, 512, 128),
        hop_ratio: float = 0.25,
        log_floor: float | None = None,
    ) -> None:
        if isinstance(fft_sizes, int):
            fft_sizes = (fft_sizes,)
        fft_sizes = tuple(_check_fft_size(n) for n in fft_sizes)
        if not fft_sizes:
            raise ValueError("`fft_sizes` must not be empty. Received: fft_sizes=()")
        hop_ratio = float(hop_ratio)
        if not 0.0 < hop_ratio <= 1.0:
            raise ValueError(f"`hop_ratio` must be in (0, 1]. Received: hop_ratio={hop_ratio}")
        if log_floor is not None:
            log_floor = float(log_floor)
            if not log_floor > 0.0:
                raise ValueError(
                    f"`log_floor` must be > 0 or None. Received: log_floor={log_floor}"
                )
        self.fft_sizes = fft_sizes
        self.hop_ratio = hop_ratio
        self.log_floor = log_floor

    def hop(self, fft_size: int) -> int:
        return max(1, int(round(fft_size * self.hop_ratio)))

    def per_resolution(self, generated: Any, real: Any) -> dict:
        """`{fft_size: scalar}` terms of the loss."""
        generated = _as_audio(generated, "generated")
        real = _as_audio(real, "real")
        terms = {}
        for n in self.fft_sizes:
            phi_g = average_power_spectrum(generated, n, self.hop(n))
            phi_y = average_power_spectrum(real, n, self.hop(n))
            if self.log_floor is None:
                per_example = ops.sum(ops.square(phi_g - phi_y), axis=-1)
            else:
                diff = ops.log(ops.maximum(phi_g, self.log_floor)) - ops.log(
                    ops.maximum(phi_y, self.log_floor)
                )
                per_example = ops.mean(ops.square(diff), axis=-1)
            terms[n] = ops.mean(per_example)
        return terms

    def __call__(self, generated: Any, real: Any) -> Any:
        """Scalar float32 loss; differentiable w.r.t. `generated` (and `real`)."""
        terms = self.per_resolution(generated, real)
        total = None
        for n in self.fft_sizes:
            total = terms[n] if total is None else total + terms[n]
        return total

    def get_config(self) -> dict:
        return {
            "fft_sizes": list(self.fft_sizes),
            "hop_ratio": self.hop_ratio,
            "log_floor": self.log_floor,
        }

    @classmethod
    def from_config(cls, config: dict) -> "PowerLoss":
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"PowerLoss(fft_sizes={self.fft_sizes}, hop_ratio={self.hop_ratio}, "
            f"log_floor={self.log_floor})"
        )
