"""`LogMelSpectrogram`: the (TensorFlow `tf.signal`) log-mel front end.

Frames are centred: frame `i` is the `n_fft` samples centred on sample `i * hop_length`
(the signal is reflect-padded by `n_fft // 2` on both sides), and exactly
`samples // hop_length` frames are kept, so `frames * hop_length == samples` whenever
`samples` is a multiple of `hop_length`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

_WINDOWS = ("hann", "hamming")

__all__ = ["LogMelSpectrogram", "make_window", "reflect_indices"]


def make_window(window: str, win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann/Hamming window of `win_length`, zero-padded (centred) to `n_fft`; float32."""
    n = np.arange(win_length)
    if window == "hann":
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    elif window == "hamming":
        w = 0.54 - 0.46 * np.cos(2.0 * np.pi * n / win_length)
    else:
        raise ValueError(f"`window` must be one of {_WINDOWS}. Received: window={window!r}")
    left = (n_fft - win_length) // 2
    out = np.zeros(n_fft, dtype=np.float64)
    out[left : left + win_length] = w
    return out.astype(np.float32)


def reflect_indices(positions: Any, length: Any) -> Any:
    """Maps (possibly out-of-range) sample positions into `[0, length)` by mirror reflection.

    Same as numpy's `np.pad(mode="reflect")`, repeated as often as needed, so any amount of
    padding works for any length >= 1. Works on numpy arrays and (dynamic) tensors.
    """
    if isinstance(positions, np.ndarray):
        length = max(int(length), 1)
        period = max(2 * (length - 1), 1)
        r = np.mod(positions, period)
        return np.where(r < length, r, period - r)
    length = tf.maximum(length, 1)
    period = tf.maximum(2 * (length - 1), 1)
    r = tf.math.floormod(positions, period)
    return tf.where(r < length, r, period - r)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class LogMelSpectrogram(keras.layers.Layer):
    """Natural-log mel spectrogram of `[batch, samples]` audio -> `[batch, samples // hop, n_mels]`.

    Args:
        sample_rate: audio sample rate in Hz.
        n_fft: FFT size (and frame length).
        hop_length: frame step in samples.
        win_length: window length (<= n_fft; the window is centred in the n_fft frame).
            `None` means n_fft.
        window: "hann" or "hamming" (periodic).
        n_mels: number of (HTK-scale, triangular) mel bands from
            `tf.signal.linear_to_mel_weight_matrix`.
        fmin, fmax: mel filterbank edges in Hz; `fmax=None` means `sample_rate / 2`.
        log_floor: output is `log(max(mel, log_floor))`.
        power: exponent of the STFT magnitude (1.0 magnitude, 2.0 power).

    The layer has no weights, always computes in float32 (inputs are not autocast to a
    mixed-precision compute dtype) and works with unknown batch size and length. Clips
    shorter than `n_fft // 2` are padded by repeated reflection (a single sample is
    repeated); empty clips give 0 frames.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        window: str = "hann",
        n_mels: int = 80,
        fmin: float = 0.0,
        fmax: float | None = None,
        log_floor: float = 1e-5,
        power: float = 1.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.sample_rate = _check_int("sample_rate", sample_rate, 1)
        self.n_fft = _check_int("n_fft", n_fft, 2)
        self.hop_length = _check_int("hop_length", hop_length, 1)
        if win_length is not None:
            win_length = _check_int("win_length", win_length, 1)
            if win_length > self.n_fft:
                raise ValueError(
                    "`win_length` must be <= n_fft. "
                    f"Received: win_length={win_length}, n_fft={self.n_fft}"
                )
        self.win_length = win_length
        if window not in _WINDOWS:
            raise ValueError(f"`window` must be one of {_WINDOWS}. Received: window={window!r}")
        self.window = window
        self.n_mels = _check_int("n_mels", n_mels, 1)
        nyquist = self.sample_rate / 2.0
        fmin = float(fmin)
        if not np.isfinite(fmin) or fmin < 0:
            raise ValueError(f"`fmin` must be >= 0. Received: fmin={fmin}")
        if fmax is not None:
            fmax = float(fmax)
            if not np.isfinite(fmax) or fmax > nyquist:
                raise ValueError(
                    f"`fmax` must be <= sample_rate / 2 = {nyquist}. "
                    f"Received: fmax={fmax}, sample_rate={self.sample_rate}"
                )
        if fmin >= (nyquist if fmax is None else fmax):
            raise ValueError(
                f"`fmin` must be < fmax. Received: fmin={fmin}, fmax={fmax} "
                f"(effective fmax={nyquist if fmax is None else fmax})"
            )
        self.fmin = fmin
        self.fmax = fmax
        log_floor = float(log_floor)
        if not np.isfinite(log_floor) or log_floor <= 0:
            raise ValueError(f"`log_floor` must be > 0. Received: log_floor={log_floor}")
        self.log_floor = log_floor
        power = float(power)
        if not np.isfinite(power) or power <= 0:
            raise ValueError(f"`power` must be > 0. Received: power={power}")
        self.power = power

        self._window_array = make_window(window, self.effective_win_length, self.n_fft)
        with tf.init_scope():  # eager even if constructed inside a tf.function
            mel = tf.signal.linear_to_mel_weight_matrix(
                num_mel_bins=self.n_mels,
                num_spectrogram_bins=self.n_fft // 2 + 1,
                sample_rate=self.sample_rate,
                lower_edge_hertz=self.fmin,
                upper_edge_hertz=self.effective_fmax,
                dtype=tf.float32,
            )
            self._mel_matrix = np.asarray(mel.numpy(), dtype=np.float32)

    # ------------------------------------------------------------------ properties
    @property
    def effective_win_length(self) -> int:
        return self.n_fft if self.win_length is None else self.win_length

    @property
    def effective_fmax(self) -> float:
        return self.sample_rate / 2.0 if self.fmax is None else self.fmax

    @property
    def mel_weight_matrix(self) -> np.ndarray:
        """`[n_fft // 2 + 1, n_mels]` float32 filterbank (a copy)."""
        return self._mel_matrix.copy()

    @property
    def window_array(self) -> np.ndarray:
        """`[n_fft]` float32 analysis window (a copy)."""
        return self._window_array.copy()

    @property
    def mel_center_frequencies(self) -> np.ndarray:
        """Centre frequency (Hz) of each mel band (HTK mel scale, as tf.signal uses)."""
        to_mel = lambda f: 1127.0 * np.log1p(np.asarray(f) / 700.0)  # noqa: E731
        mels = np.linspace(to_mel(self.fmin), to_mel(self.effective_fmax), self.n_mels + 2)
        return 700.0 * np.expm1(mels[1:-1] / 1127.0)

    @property
    def pad_value(self) -> float:
        """The output value of silence: `log(log_floor)`."""
        return float(np.log(self.log_floor))

    # ------------------------------------------------------------------ layer API
    def call(self, inputs: Any) -> Any:
        x = tf.convert_to_tensor(inputs)
        if x.shape.rank is not None and x.shape.rank != 2:
            raise ValueError(
                f"LogMelSpectrogram expects audio of shape [batch, samples]. Received: shape={x.shape}"
            )
        x = tf.cast(x, tf.float32)
        static_len = x.shape[1]
        length = tf.shape(x)[1]
        num_frames = length // self.hop_length
        pad = self.n_fft // 2
        # Reflect padding through index gathers (valid for any length; a trailing zero makes
        # the gather safe for empty clips, whose 0 frames are sliced off below).
        x_ext = tf.pad(x, [[0, 0], [0, 1]])
        left_idx = reflect_indices(tf.range(-pad, 0), length)
        right_idx = reflect_indices(tf.range(length, length + pad), length)
        padded = tf.concat(
            [tf.gather(x_ext, left_idx, axis=1), x, tf.gather(x_ext, right_idx, axis=1)], axis=1
        )
        frames = tf.signal.frame(padded, self.n_fft, self.hop_length, pad_end=False, axis=-1)
        frames = frames[:, :num_frames]
        frames = frames * ops.convert_to_tensor(self._window_array)
        spec = tf.signal.rfft(frames, fft_length=[self.n_fft])
        if self.power == 2.0:
            mag = ops.square(tf.math.real(spec)) + ops.square(tf.math.imag(spec))
        else:
            mag = tf.abs(spec)
            if self.power != 1.0:
                mag = ops.power(mag, self.power)
        mel = ops.matmul(mag, ops.convert_to_tensor(self._mel_matrix))
        out = ops.log(ops.maximum(mel, self.log_floor))
        frames_static = None if static_len is None else static_len // self.hop_length
        out = tf.ensure_shape(out, [x.shape[0], frames_static, self.n_mels])
        return out

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        samples = input_shape[1]
        frames = None if samples is None else samples // self.hop_length
        return (input_shape[0], frames, self.n_mels)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "n_fft": self.n_fft,
                "hop_length": self.hop_length,
                "win_length": self.win_length,
                "window": self.window,
                "n_mels": self.n_mels,
                "fmin": self.fmin,
                "fmax": self.fmax,
                "log_floor": self.log_floor,
                "power": self.power,
            }
        )
        return config
