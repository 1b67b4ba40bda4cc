"""Multi-resolution STFT loss: frame-by-frame spectral match (beyond the paper).

The paper's power loss matches only the *time-averaged* spectrum. With a small distillation
budget (a CPU, an hour) the KL alone moves the student's spectrogram towards the real one
slowly; comparing the spectrograms frame by frame, as ClariNet and Parallel WaveGAN do,
makes it follow the conditioning quickly. For each FFT size N:

    S_g, S_y  = |STFT|  of generated and real audio (periodic Hann, hop N/4)
    convergence = || S_y - S_g ||_F / || S_y ||_F
    log_mag     = mean | log(S_y + eps) - log(S_g + eps) |
    L_N = convergence + log_mag ;  loss = mean over sizes of L_N

It is off by default (`distill.spectral_weight: 0`) and is a separate, logged term.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops

from pwavenet_tf.losses.power_loss import power_spectrogram

EPS = 1e-5


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class MultiResolutionSTFTLoss:
    """`loss(generated, real) -> scalar`, mean over `fft_sizes` (see module docstring)."""

    def __init__(self, fft_sizes: Sequence[int] = (1024, 512, 256, 128), hop_ratio: float = 0.25):
        fft_sizes = tuple(int(n) for n in fft_sizes)
        if not fft_sizes or any(n < 16 for n in fft_sizes):
            raise ValueError(f"`fft_sizes` must be sizes >= 16. Received: fft_sizes={fft_sizes}")
        if not 0.0 < hop_ratio <= 1.0:
            raise ValueError(f"`hop_ratio` must be in (0, 1]. Received: hop_ratio={hop_ratio}")
        self.fft_sizes = fft_sizes
        self.hop_ratio = float(hop_ratio)

    def __call__(self, generated: Any, real: Any) -> Any:
        total = 0.0
        for n in self.fft_sizes:
            hop = max(1, int(round(n * self.hop_ratio)))
            mag_g = ops.sqrt(power_spectrogram(generated, n, hop) + EPS**2)
            mag_y = ops.sqrt(power_spectrogram(real, n, hop) + EPS**2)
            convergence = ops.sqrt(ops.sum(ops.square(mag_y - mag_g))) / ops.sqrt(
                ops.sum(ops.square(mag_y)))
            log_mag = ops.mean(ops.abs(ops.log(mag_y) - ops.log(mag_g)))
            total = total + convergence + log_mag
        return total / len(self.fft_sizes)

    def get_config(self) -> dict:
        return {"fft_sizes": list(self.fft_sizes), "hop_ratio": self.hop_ratio}

    @classmethod
    def from_config(cls, config: dict) -> "MultiResolutionSTFTLoss":
        return cls(**config)
