"""The log-mel front end described by an audio config: effective settings and the layer.

`audio_cfg` is any object (or mapping) with the attributes `sample_rate, n_fft, hop_length,
win_length, window, n_mels, fmin, fmax, log_floor, feature_dim` (missing ones take the
`LogMelSpectrogram` defaults; `feature_dim=None` means log-mel features with `n_mels`
bands, an int means external `[frames, feature_dim]` features).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pwavenet_tf.audio.log_mel_spectrogram import LogMelSpectrogram

_MEL_DEFAULTS = {
    "n_fft": 1024,
    "hop_length": 256,
    "win_length": None,
    "window": "hann",
    "n_mels": 80,
    "fmin": 0.0,
    "fmax": None,
    "log_floor": 1e-5,
    "feature_dim": None,
}

__all__ = [
    "audio_settings",
    "feature_dim_of",
    "feature_pad_value",
    "make_log_mel",
]


def _get(cfg: Any, name: str) -> Any:
    if isinstance(cfg, Mapping):
        if name in cfg:
            return cfg[name]
    elif hasattr(cfg, name):
        return getattr(cfg, name)
    if name in _MEL_DEFAULTS:
        return _MEL_DEFAULTS[name]
    raise ValueError(f"`audio_cfg` has no attribute {name!r}. Received: audio_cfg={cfg!r}")


def audio_settings(audio_cfg: Any) -> dict:
    """The effective feature settings as a JSON-able dict (`win_length`/`fmax` resolved)."""
    sample_rate = int(_get(audio_cfg, "sample_rate"))
    n_fft = int(_get(audio_cfg, "n_fft"))
    win_length = _get(audio_cfg, "win_length")
    fmax = _get(audio_cfg, "fmax")
    feature_dim = _get(audio_cfg, "feature_dim")
    return {
        "sample_rate": sample_rate,
        "n_fft": n_fft,
        "hop_length": int(_get(audio_cfg, "hop_length")),
        "win_length": n_fft if win_length is None else int(win_length),
        "window": str(_get(audio_cfg, "window")),
        "n_mels": int(_get(audio_cfg, "n_mels")),
        "fmin": float(_get(audio_cfg, "fmin")),
        "fmax": sample_rate / 2.0 if fmax is None else float(fmax),
        "log_floor": float(_get(audio_cfg, "log_floor")),
        "feature_dim": None if feature_dim is None else int(feature_dim),
    }


def make_log_mel(audio_cfg: Any) -> LogMelSpectrogram:
    """The `LogMelSpectrogram` layer described by `audio_cfg`."""
    s = audio_settings(audio_cfg)
    return LogMelSpectrogram(
        sample_rate=s["sample_rate"],
        n_fft=s["n_fft"],
        hop_length=s["hop_length"],
        win_length=s["win_length"],
        window=s["window"],
        n_mels=s["n_mels"],
        fmin=s["fmin"],
        fmax=s["fmax"],
        log_floor=s["log_floor"],
    )


def feature_dim_of(audio_cfg: Any) -> int:
    """Width of the features: `feature_dim` if set, else `n_mels`."""
    s = audio_settings(audio_cfg)
    return s["n_mels"] if s["feature_dim"] is None else s["feature_dim"]


def feature_pad_value(audio_cfg: Any) -> float:
    """Value used to pad features past the end of a clip (log-mel of silence, or 0)."""
    s = audio_settings(audio_cfg)
    return float(np.log(s["log_floor"])) if s["feature_dim"] is None else 0.0
