"""16-bit PCM and mu-law quantization conventions.

The 65,536 int16 codes `q` in [-32768, 32767] map to the bin centres of [-1, 1]:

    x = (q + 32768) * 2 / 65535 - 1

so code -32768 is exactly -1.0, code 32767 is exactly +1.0, and neighbouring codes are
`2 / 65535` apart (half bin width `PCM16_HALF_BIN = 1 / 65535`).

Every function accepts numpy arrays / Python scalars (numpy path, returns numpy) and
backend tensors (`keras.ops` path, returns tensors). The float conversions are computed in
float64 and rounded once to float32 in both paths, so they agree bit for bit.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

PCM16_MIN = -32768
PCM16_MAX = 32767
PCM16_LEVELS = 65536
PCM16_HALF_BIN = 1.0 / 65535.0
_HALF_RANGE = 65535.0 / 2.0  # 32767.5 codes per unit of amplitude

__all__ = [
    "PCM16_HALF_BIN",
    "PCM16_LEVELS",
    "PCM16_MAX",
    "PCM16_MIN",
    "float_to_pcm16",
    "mu_law_decode",
    "mu_law_encode",
    "pcm16_to_float",
    "quantize_16bit",
]


def _is_tensor(x: Any) -> bool:
    """True for backend tensors / KerasTensors, False for numpy and Python values."""
    if isinstance(x, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        return False
    return ops.is_tensor(x) or isinstance(x, keras.KerasTensor)


def _check_channels(channels: int) -> int:
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 2:
        raise ValueError(f"`channels` must be an integer >= 2. Received: channels={channels!r}")
    return int(channels)


def pcm16_to_float(q: Any) -> Any:
    """int16 PCM codes -> float32 bin centres in [-1, 1] (`(q + 32768) * 2 / 65535 - 1`)."""
    if _is_tensor(q):
        x = (ops.cast(q, "float64") + 32768.0) * 2.0 / 65535.0 - 1.0
        return ops.cast(x, "float32")
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise ValueError(
            f"`pcm16_to_float` expects integer PCM codes. Received: q with dtype={q.dtype}"
        )
    if q.size and (q.min() < PCM16_MIN or q.max() > PCM16_MAX):
        raise ValueError(
            "PCM16 codes must lie in [-32768, 32767]. "
            f"Received: q with min={q.min()}, max={q.max()}"
        )
    x = (q.astype(np.float64) + 32768.0) * 2.0 / 65535.0 - 1.0
    return x.astype(np.float32)


def float_to_pcm16(x: Any) -> Any:
    """float audio -> int16 codes: clip to [-1, 1] and round to the nearest bin centre.

    The numpy path raises `ValueError` on NaN (it has no meaningful code).
    """
    if _is_tensor(x):
        x = ops.clip(ops.cast(x, "float64"), -1.0, 1.0)
        q = ops.round((x + 1.0) * _HALF_RANGE) - 32768.0
        return ops.cast(ops.clip(q, PCM16_MIN, PCM16_MAX), "int16")
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("Cannot convert NaN samples to PCM16. Received: x containing NaN")
    x = np.clip(x, -1.0, 1.0)
    # Codes are at (q + 32768) = (x + 1) * 32767.5; the nearest code is round of that.
    q = np.round((x + 1.0) * _HALF_RANGE) - 32768.0
    return np.clip(q, PCM16_MIN, PCM16_MAX).astype(np.int16)


def quantize_16bit(x: Any) -> Any:
    """Rounds float audio to the nearest 16-bit bin centre (clipping to [-1, 1]); float32."""
    return pcm16_to_float(float_to_pcm16(x))


def mu_law_encode(x: Any, channels: int = 256) -> Any:
    """Mu-law companding + quantization of audio in [-1, 1] to int32 codes in [0, channels).

    `mu = channels - 1`, `y = sign(x) log1p(mu |x|) / log1p(mu)`,
    `code = floor((y + 1) / 2 * mu + 0.5)`. Inputs are clipped to [-1, 1].
    """
    channels = _check_channels(channels)
    mu = float(channels - 1)
    if _is_tensor(x):
        x = ops.clip(ops.cast(x, "float32"), -1.0, 1.0)
        y = ops.sign(x) * ops.log1p(mu * ops.abs(x)) / np.log1p(mu)
        code = ops.floor((y + 1.0) / 2.0 * mu + 0.5)
        return ops.cast(ops.clip(code, 0, channels - 1), "int32")
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("Cannot mu-law encode NaN samples. Received: x containing NaN")
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    code = np.floor((y + 1.0) / 2.0 * mu + 0.5)
    return np.clip(code, 0, channels - 1).astype(np.int32)


def mu_law_decode(q: Any, channels: int = 256) -> Any:
    """Inverse of `mu_law_encode`: int codes in [0, channels) -> float32 audio in [-1, 1]."""
    channels = _check_channels(channels)
    mu = float(channels - 1)
    if _is_tensor(q):
        y = ops.cast(q, "float32") * (2.0 / mu) - 1.0
        x = ops.sign(y) * (ops.power(1.0 + mu, ops.abs(y)) - 1.0) / mu
        return ops.cast(x, "float32")
    q = np.asarray(q)
    if q.size and (q.min() < 0 or q.max() > channels - 1):
        raise ValueError(
            f"mu-law codes must lie in [0, {channels - 1}]. "
            f"Received: q with min={q.min()}, max={q.max()}"
        )
    y = q.astype(np.float64) * (2.0 / mu) - 1.0
    x = np.sign(y) * (np.power(1.0 + mu, np.abs(y)) - 1.0) / mu
    return x.astype(np.float32)
