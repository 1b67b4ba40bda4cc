"""The original WaveNet output: a softmax over mu-law companded 8-bit (256-way) values.

Audio `x` in [-1, 1] is companded with `y = sign(x) log(1 + mu |x|) / log(1 + mu)`
(`mu = channels - 1`) and quantized to the class `q = floor((y + 1) / 2 * mu + 1/2)` in
`[0, channels)`. Class `q` decodes to `y = 2 q / mu - 1`, then
`x = sign(y) ((1 + mu)^|y| - 1) / mu`. These are the same formulas as the numpy
`pwavenet_tf.audio.quantize.mu_law_encode` / `mu_law_decode`, written here with
`keras.ops` so the distribution works inside graphs.

Unlike the discretized logistic mixture this output is inherently discrete: `log_prob`
encodes `x` to its class (no gradient flows to `x`), so it cannot serve as the teacher in
probability density distillation. It is the baseline teacher output of WaveNet.
"""

import math

import keras
from keras import ops

__all__ = ["CategoricalMuLaw", "CategoricalMuLawLoss", "mu_law_nll_loss"]


def _validate_channels(channels):
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 2:
        raise ValueError(f"`channels` must be an int >= 2 (256 for WaveNet). Received: channels={channels!r}")


def _mu_law_encode(x, channels):
    """Float audio in [-1, 1] (clipped) -> int32 class in [0, channels)."""
    mu = float(channels - 1)
    x = ops.clip(x, -1.0, 1.0)
    y = ops.sign(x) * ops.log1p(mu * ops.abs(x)) / math.log1p(mu)
    q = ops.floor((y + 1.0) / 2.0 * mu + 0.5)
    return ops.cast(ops.clip(q, 0.0, mu), "int32")


def _mu_law_decode(q, channels, dtype="float32"):
    """Class in [0, channels) -> float audio in [-1, 1]."""
    mu = float(channels - 1)
    y = 2.0 * ops.cast(q, dtype) / mu - 1.0
    # (1 + mu)^|y| - 1, written as expm1(|y| log(1 + mu)).
    return ops.sign(y) * ops.expm1(ops.abs(y) * math.log1p(mu)) / mu


def _compute_dtype(x):
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in ("float16", "bfloat16") or "float" not in dtype:
        return "float32"
    return dtype


class CategoricalMuLaw:
    """Categorical distribution over `channels` mu-law levels of audio in [-1, 1].

    Args:
        logits: float tensor `[..., channels]` of unnormalized log-probabilities.
            Half-precision inputs are computed in float32.
        channels: number of mu-law levels (256 in WaveNet); `mu = channels - 1`.

    Example:

    ```python
    dist = CategoricalMuLaw(logits)       # logits [B, T, 256]
    nll = -dist.log_prob(audio)           # [B, T], nats
    x = dist.sample(u)                    # [B, T] decoded audio, u uniform [B, T]
    ```
    """

    def __init__(self, logits, channels=256):
        _validate_channels(channels)
        logits = ops.convert_to_tensor(logits)
        if len(logits.shape) < 1 or logits.shape[-1] != channels:
            raise ValueError(
                "The last axis of `logits` must equal `channels`. "
                f"Received: logits.shape={tuple(logits.shape)}, channels={channels}"
            )
        self._channels = channels
        self._logits = ops.cast(logits, _compute_dtype(logits))

    @property
    def channels(self):
        """Number of mu-law levels."""
        return self._channels

    @property
    def dtype(self):
        """Computation dtype (float32 or float64)."""
        return keras.backend.standardize_dtype(self._logits.dtype)

    @property
    def logits(self):
        """Unnormalized logits `[..., channels]`."""
        return self._logits

    def log_probs(self):
        """Normalized log-probabilities of every class, `[..., channels]`."""
        return ops.log_softmax(self._logits, axis=-1)

    def log_prob(self, x):
        """Log probability (nats) of the mu-law class of `x`.

        Args:
            x: float audio broadcastable to `logits.shape[:-1]`; values outside [-1, 1] are
                clipped. `x` is quantized to its class, so no gradient flows to it.

        Returns:
            Tensor `logits.shape[:-1]` with `log_softmax(logits)[..., encode(x)]`.
        """
        x = ops.cast(ops.convert_to_tensor(x), self.dtype)
        q = _mu_law_encode(x, self._channels)
        one_hot = ops.one_hot(q, self._channels, dtype=self.dtype)
        return ops.sum(self.log_probs() * one_hot, axis=-1)

    def sample(self, u):
        """Inverse-CDF sample from explicit uniforms, decoded to float audio.

        Args:
            u: uniforms in (0, 1), shape `logits.shape[:-1]`. The class is the first `q`
                with `cumsum(softmax(logits))_q >= u`.

        Returns:
            Tensor `logits.shape[:-1]` of decoded audio (the class's mu-law level).
        """
        u = ops.cast(ops.convert_to_tensor(u), self.dtype)
        cdf = ops.cumsum(ops.softmax(self._logits, axis=-1), axis=-1)
        q = ops.sum(ops.cast(cdf < ops.expand_dims(u, -1), "int32"), axis=-1)
        q = ops.minimum(q, self._channels - 1)  # cdf[-1] may round below u
        return _mu_law_decode(q, self._channels, self.dtype)

    def mean(self):
        """Expected decoded value `sum_q p_q decode(q)`, `[...]`."""
        levels = _mu_law_decode(ops.arange(self._channels), self._channels, self.dtype)
        return ops.sum(ops.softmax(self._logits, axis=-1) * levels, axis=-1)


def _mu_law_nll(y_true, y_pred, channels):
    dist = CategoricalMuLaw(y_pred, channels=channels)
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    return -dist.log_prob(y_true)


def mu_law_nll_loss(y_true, y_pred, channels=256):
    """Mean negative log-likelihood (nats per sample) of audio under the mu-law softmax.

    Args:
        y_true: float audio in [-1, 1], `[B, T]` (or `[B, T, 1]`).
        y_pred: logits `[B, T, channels]`.
        channels: number of mu-law levels.

    Returns:
        Scalar tensor, the mean NLL in nats (a uniform model scores `log(channels)`).
    """
    return ops.mean(_mu_law_nll(y_true, y_pred, channels))


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class CategoricalMuLawLoss(keras.losses.Loss):
    """Keras loss: softmax cross-entropy against the mu-law class of the target audio.

    `call` returns the per-sample NLL `[B, T]` in nats, so the default
    `"sum_over_batch_size"` reduction gives the mean NLL per audio sample.

    Args:
        channels: number of mu-law levels (256).
        name, reduction, dtype: as for `keras.losses.Loss`.
    """

    def __init__(self, channels=256, name="categorical_mu_law_loss", reduction="sum_over_batch_size", dtype=None):
        _validate_channels(channels)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.channels = channels

    def call(self, y_true, y_pred):
        return _mu_law_nll(y_true, y_pred, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels})
        return config
