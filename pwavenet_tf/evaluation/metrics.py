"""Objective resynthesis metrics and the Griffin-Lim reference.

All metrics compare a resynthesized signal with the real one through the model's own
front end (`LogMelSpectrogram`: natural log of the mel magnitude, floored at `log_floor`).
The vocoder's output has exactly the input's length, so frames are aligned one to one;
signals of different lengths are an error, never silently trimmed.

- `log_mel_l1`: mean over frames and bands of |log-mel(a) - log-mel(b)| (nats).
- `mel_cepstral_distortion` (dB): the mel cepstrum of a frame is the cosine expansion of
  its log-mel vector x (N bands), c_d = (1/N) sum_n x_n cos(pi d (n + 1/2) / N), so that
  x_n = c_0 + 2 sum_{d>=1} c_d cos(pi d (n + 1/2) / N). Per frame,
  MCD = (10 / ln 10) * sqrt(2 * sum_{d=1..D} (c_d - c'_d)^2), c_0 (the frame's level)
  excluded, D = `num_coefficients` (24 by default, capped at N - 1); averaged over frames.
- `griffin_lim_from_mel`: the reference floor. The mel magnitudes are mapped back to
  linear STFT magnitudes with the pseudo-inverse of the mel filterbank (negative values
  clipped to 0), then the phase is estimated by (fast) Griffin-Lim iterations with
  `tf.signal.stft` / `tf.signal.inverse_stft`, framed exactly like the front end (centred
  frames, reflect padding, the same window).
"""

import math

import numpy as np
import tensorflow as tf

from pwavenet_tf.audio.log_mel_spectrogram import LogMelSpectrogram, reflect_indices

DB_PER_NEPER = 10.0 / math.log(10.0)


def _mel_layer(front_end):
    """A `LogMelSpectrogram` from a layer, an `AudioConfig` or a settings mapping."""
    if isinstance(front_end, LogMelSpectrogram):
        return front_end
    from pwavenet_tf.audio.front_end import make_log_mel

    return make_log_mel(front_end)


def _as_audio(x, name):
    x = np.asarray(x, dtype="float32")
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ValueError(f"`{name}` must be mono audio [samples]. Received: shape={x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` contains NaN or Inf.")
    return x


def _pair(a, b, layer):
    a, b = _as_audio(a, "a"), _as_audio(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            "The two signals must have the same length (frames aligned one to one). "
            f"Received: len(a)={a.shape[0]}, len(b)={b.shape[0]}"
        )
    if a.shape[0] < layer.hop_length:
        raise ValueError(f"Signals shorter than one frame (hop_length={layer.hop_length}). "
                         f"Received: length={a.shape[0]}")
    mels = layer(np.stack([a, b])).numpy()
    return mels[0], mels[1]


def log_mel(audio, front_end):
    """Log-mel `[frames, n_mels]` of mono audio with the given front end."""
    layer = _mel_layer(front_end)
    return layer(_as_audio(audio, "audio")[None]).numpy()[0]


def log_mel_l1(a, b, front_end):
    """Mean absolute difference of the log-mel spectrograms of two equal-length signals."""
    ma, mb = _pair(a, b, _mel_layer(front_end))
    return float(np.mean(np.abs(ma - mb)))


def cepstrum_matrix(n_mels, num_coefficients):
    """`[n_mels, K]` matrix: log-mel `[F, n_mels]` @ it = mel cepstrum c_0..c_{K-1}."""
    n = np.arange(n_mels)[:, None] + 0.5
    d = np.arange(num_coefficients)[None, :]
    return (np.cos(np.pi * d * n / n_mels) / n_mels).astype("float64")


def mel_cepstrum(log_mel_frames, num_coefficients=25):
    """Mel cepstrum `[frames, K]` (c_0 first) of log-mel frames `[frames, n_mels]`."""
    x = np.asarray(log_mel_frames, dtype="float64")
    k = min(int(num_coefficients), x.shape[-1])
    return x @ cepstrum_matrix(x.shape[-1], k)


def mcd_from_log_mel(ma, mb, num_coefficients=24):
    """Mean MCD (dB) between two aligned log-mel arrays `[frames, n_mels]`, c_0 excluded."""
    ma, mb = np.asarray(ma), np.asarray(mb)
    if ma.shape != mb.shape:
        raise ValueError(f"Log-mel shapes differ: {ma.shape} vs {mb.shape}")
    if isinstance(num_coefficients, bool) or int(num_coefficients) != num_coefficients \
            or num_coefficients < 1:
        raise ValueError("The number of mel-cepstral coefficients (--mcd-coefficients) must "
                         f"be a positive integer. Received: num_coefficients={num_coefficients!r}")
    if ma.shape[-1] < 2:
        raise ValueError(f"Need at least 2 mel bands for MCD. Received: n_mels={ma.shape[-1]}")
    d = min(int(num_coefficients), ma.shape[-1] - 1)
    diff = mel_cepstrum(ma - mb, d + 1)[:, 1:]  # the cepstrum is linear in the log-mel
    per_frame = DB_PER_NEPER * np.sqrt(2.0 * np.sum(diff**2, axis=-1))
    return float(np.mean(per_frame))


def mel_cepstral_distortion(a, b, front_end, num_coefficients=24):
    """Mel-cepstral distortion in dB between two equal-length signals (c_1..c_D)."""
    ma, mb = _pair(a, b, _mel_layer(front_end))
    return mcd_from_log_mel(ma, mb, num_coefficients)


def compare(reference, estimate, front_end, num_coefficients=24):
    """Both metrics at once: `{"log_mel_l1": ..., "mcd_db": ...}`."""
    layer = _mel_layer(front_end)
    ma, mb = _pair(reference, estimate, layer)
    return {"log_mel_l1": float(np.mean(np.abs(ma - mb))),
            "mcd_db": mcd_from_log_mel(ma, mb, num_coefficients)}


# --------------------------------------------------------------------------- Griffin-Lim


def mel_to_linear_magnitude(log_mel_frames, front_end):
    """Linear STFT magnitudes `[frames, n_fft // 2 + 1]` from log-mel `[frames, n_mels]`.

    `exp(log_mel) @ pinv(mel_matrix)`, clipped at 0 (magnitudes are nonnegative).
    """
    layer = _mel_layer(front_end)
    mel = np.exp(np.asarray(log_mel_frames, dtype="float64"))
    if mel.ndim != 2 or mel.shape[1] != layer.n_mels:
        raise ValueError(f"`log_mel_frames` must be [frames, {layer.n_mels}]. "
                         f"Received: shape={mel.shape}")
    inverse = np.linalg.pinv(layer.mel_weight_matrix.astype("float64"))  # [n_mels, bins]
    if layer.power != 1.0:
        mel = mel ** (1.0 / layer.power)
    return np.maximum(mel @ inverse, 0.0).astype("float32")


class _Framing:
    """STFT/ISTFT framed like `LogMelSpectrogram` (centred frames, reflect padding)."""

    def __init__(self, layer, length):
        self.n_fft = layer.n_fft
        self.hop = layer.hop_length
        self.length = int(length)
        self.frames = self.length // self.hop
        self.pad = self.n_fft // 2
        window = tf.constant(layer.window_array)
        self.window_fn = lambda frame_length, dtype: tf.cast(window, dtype)
        self.inverse_window_fn = tf.signal.inverse_stft_window_fn(self.hop, self.window_fn)
        left = reflect_indices(np.arange(-self.pad, 0), self.length)
        right = reflect_indices(np.arange(self.length, self.length + self.pad), self.length)
        self.gather = tf.constant(np.concatenate([left, np.arange(self.length), right]),
                                  tf.int32)

    def stft(self, x):
        padded = tf.gather(x, self.gather)
        spec = tf.signal.stft(padded, self.n_fft, self.hop, self.n_fft,
                              window_fn=self.window_fn, pad_end=False)
        return spec[: self.frames]

    def istft(self, spec):
        y = tf.signal.inverse_stft(spec, self.n_fft, self.hop, self.n_fft,
                                   window_fn=self.inverse_window_fn)
        y = tf.pad(y, [[0, max(0, self.pad + self.length - int(y.shape[0]))]])
        return y[self.pad: self.pad + self.length]


def griffin_lim(magnitude, front_end, num_iters=32, momentum=0.99, seed=0):
    """Audio `[frames * hop]` whose STFT magnitude approximates `magnitude` `[frames, bins]`.

    Fast Griffin-Lim (Perraudin et al. 2013; `momentum=0` is the classic algorithm) from a
    random initial phase drawn with a stateless `seed`.
    """
    layer = _mel_layer(front_end)
    magnitude = np.asarray(magnitude, dtype="float32")
    bins = layer.n_fft // 2 + 1
    if magnitude.ndim != 2 or magnitude.shape[1] != bins or magnitude.shape[0] < 1:
        raise ValueError(f"`magnitude` must be [frames >= 1, {bins}]. "
                         f"Received: shape={magnitude.shape}")
    if num_iters < 0:
        raise ValueError(f"`num_iters` must be >= 0. Received: num_iters={num_iters}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum}")
    framing = _Framing(layer, magnitude.shape[0] * layer.hop_length)
    mag = tf.constant(magnitude)
    mag_c = tf.complex(mag, tf.zeros_like(mag))
    alpha = momentum / (1.0 + momentum)

    def unit(z):
        return z / tf.complex(tf.maximum(tf.abs(z), 1e-16), 0.0)

    @tf.function(autograph=False)
    def run():
        phase = tf.random.stateless_uniform(tf.shape(mag), seed=[int(seed), 7],
                                            maxval=2.0 * math.pi)
        angles = tf.complex(tf.cos(phase), tf.sin(phase))
        previous = tf.zeros_like(angles)

        def body(i, angles, previous):
            rebuilt = framing.stft(framing.istft(mag_c * angles))
            angles = unit(rebuilt - tf.complex(alpha, 0.0) * previous)
            return i + 1, angles, rebuilt

        _, angles, _ = tf.while_loop(lambda i, *_: i < num_iters, body,
                                     (tf.constant(0), angles, previous))
        return framing.istft(mag_c * angles)

    return run().numpy()


def griffin_lim_from_mel(log_mel_frames, front_end, num_iters=32, momentum=0.99, seed=0):
    """The Griffin-Lim reference: audio `[frames * hop]` from log-mel `[frames, n_mels]`."""
    layer = _mel_layer(front_end)
    return griffin_lim(mel_to_linear_magnitude(log_mel_frames, layer), layer,
                       num_iters=num_iters, momentum=momentum, seed=seed)


def spectral_convergence(a, b, front_end):
    """|| |STFT(a)| - |STFT(b)| ||_F / || |STFT(a)| ||_F with the front end's framing."""
    layer = _mel_layer(front_end)
    a, b = _as_audio(a, "a"), _as_audio(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"Lengths differ: {a.shape[0]} vs {b.shape[0]}")
    framing = _Framing(layer, a.shape[0])
    sa = tf.abs(framing.stft(tf.constant(a))).numpy()
    sb = tf.abs(framing.stft(tf.constant(b))).numpy()
    return float(np.linalg.norm(sa - sb) / max(np.linalg.norm(sa), 1e-12))
