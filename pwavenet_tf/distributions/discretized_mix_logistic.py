"""Discretized mixture of logistics (PixelCNN++ style) for 16-bit (or 8-bit) audio.

This is the output distribution of the WaveNet teacher. Each sample is modelled by a
mixture of `K` logistic distributions, integrated over the quantization bin of the sample:

    P(x) = sum_k pi_k [ sigma((x + delta - mu_k) / s_k) - sigma((x - delta - mu_k) / s_k) ]

with the edge bins taking all the mass beyond them (`x = -1` takes everything below
`-1 + delta`, `x = +1` everything above `1 - delta`).

Conventions (see `docs/architecture.md`):

- Audio `x` is float in [-1, 1]. With `num_classes = N` the bin centres are
  `x_q = -1 + 2 q / (N - 1)` for `q = 0 .. N-1`; for 16-bit PCM (`N = 65536`) this is
  `x = (pcm + 32768) * 2 / 65535 - 1`. The half bin width is `delta = 1 / (N - 1)`.
- Parameters are laid out along the last axis as `[logits (K), means (K), log_scales (K)]`,
  so `params.shape[-1] == 3 * K`.
- Everything is written with `keras.ops`, so it is differentiable with respect to both the
  parameters and `x`, and runs on any Keras backend (the project uses TensorFlow).

`log_prob` accepts any real `x` (not only bin centres) and never rounds it: the
distillation loss evaluates the teacher at continuous student samples and needs gradients
with respect to `x`. All branches selected with `ops.where` are kept finite so that the
gradients are finite everywhere.

Numerics (as in the project's math doc, PixelCNN++):

- Interior bins use `log(sigma(a) - sigma(b))`, `a, b = (x -+ delta - mu) / s`, computed
  without cancellation as `log sigma(a) + log sigma(-b) + log(1 - exp(-(a - b)))`
  (`a - b = 2 delta / s` is formed directly). It is the same quantity as the plain
  difference, but accurate in float32 even for 16-bit bins.
- Where that mass is below 1e-5 it is replaced by `pdf(x) * 2 delta` (the doc's fallback).
  For components wider than a bin this is accurate to a relative `(delta / s)^2 / 6`; for
  components narrower than a bin it under-counts the bins next to the peak, so the bin
  masses of such a component can sum to up to ~2e-5 less than one.
- Edge bins use `log sigma(a)` (lower) and `-softplus(b)` (upper).
- In float32, 16-bit bin centres near +-1 are themselves rounded by up to 3e-8 (0.2% of a
  half bin). For components much narrower than a bin this input rounding, not the
  computation, limits the accuracy (up to ~0.015 nats for `s` = 0.4 bins); use float64
  inputs and parameters when that matters.
"""

import math

import keras
from keras import ops

__all__ = [
    "DiscretizedMixLogistic",
    "DiscretizedMixLogisticLoss",
    "mix_logistic_nll_loss",
    "num_params",
]

# Interior bin probabilities below this use the density at the bin centre times the bin
# width (PixelCNN++, and the project's math doc).
_CDF_DELTA_THRESHOLD = 1e-5
_LOG_CDF_DELTA_THRESHOLD = math.log(_CDF_DELTA_THRESHOLD)
# Floor inside a log that only guards an unused `ops.where` branch against -inf/NaN.
_TINY = 1e-30


def num_params(num_components):
    """Number of output channels a network needs for a `K`-component mixture: `3 * K`.

    Args:
        num_components: positive int, the number of logistic components `K`.

    Returns:
        int, `3 * num_components`.
    """
    if isinstance(num_components, bool) or not isinstance(num_components, int) or num_components < 1:
        raise ValueError(
            f"`num_components` must be a positive int. Received: num_components={num_components!r}"
        )
    return 3 * num_components


def _validate_num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            "`num_classes` must be an int >= 2 (65536 for 16-bit audio, 256 for 8-bit). "
            f"Received: num_classes={num_classes!r}"
        )


def _compute_dtype(x):
    """float32 for half-precision inputs (mixed precision), else the input's float dtype."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype in ("float16", "bfloat16") or "float" not in dtype:
        return "float32"
    return dtype


def _log_weights(logits):
    """log_softmax over the last axis (written out: keras warns on a size-1 softmax axis)."""
    return logits - ops.logsumexp(logits, axis=-1, keepdims=True)


def _log_sigmoid(z):
    """log(sigmoid(z)) = -softplus(-z), accurate for large |z|."""
    return -ops.softplus(-z)


class DiscretizedMixLogistic:
    """Discretized mixture of logistics over `num_classes` bins of [-1, 1].

    Args:
        params: float tensor `[..., 3K]`: `[logits (K), means (K), log_scales (K)]` along
            the last axis. Half-precision inputs are computed in float32; float64 stays
            float64.
        num_classes: number of quantization levels; 65536 (16-bit, default) or 256 (8-bit),
            any int >= 2 works. The half bin width is `delta = 1 / (num_classes - 1)`.
        log_scale_min: floor applied to the log-scales (`log s >= log_scale_min`). For
            16-bit audio the default -14 (s ~ 8.3e-7, about 0.03 of a bin width) lets a component
            put almost all its mass in one bin; for 8-bit -7 is customary.

    Example:

    ```python
    dist = DiscretizedMixLogistic(params)           # params [B, T, 30] -> K = 10
    nll = -dist.log_prob(audio)                     # [B, T], nats
    x = dist.sample(u_component, u_logistic)        # [B, T], uniforms of shape [B, T]
    ```
    """

    def __init__(self, params, num_classes=65536, log_scale_min=-14.0):
        _validate_num_classes(num_classes)
        params = ops.convert_to_tensor(params)
        if len(params.shape) < 1:
            raise ValueError(
                f"`params` must have at least one axis `[..., 3K]`. Received: params.shape={params.shape}"
            )
        last = params.shape[-1]
        if last is None or last == 0 or last % 3 != 0:
            raise ValueError(
                "The last axis of `params` must be a known, positive multiple of 3 "
                "([logits, means, log_scales] for each component). "
                f"Received: params.shape={tuple(params.shape)}"
            )
        params = ops.cast(params, _compute_dtype(params))
        self._num_classes = num_classes
        self._log_scale_min = float(log_scale_min)
        self._num_components = last // 3
        self._params = params
        k = self._num_components
        self._logits = params[..., :k]
        self._means = params[..., k : 2 * k]
        self._log_scales = ops.maximum(params[..., 2 * k :], self._log_scale_min)

    @property
    def num_components(self):
        """Number of mixture components `K`."""
        return self._num_components

    @property
    def num_classes(self):
        """Number of quantization bins on [-1, 1]."""
        return self._num_classes

    @property
    def delta(self):
        """Half bin width `1 / (num_classes - 1)` (Python float)."""
        return 1.0 / (self._num_classes - 1)

    @property
    def dtype(self):
        """Computation dtype (float32 or float64)."""
        return keras.backend.standardize_dtype(self._params.dtype)

    @property
    def logits(self):
        """Unnormalized mixture logits `[..., K]`."""
        return self._logits

    @property
    def means(self):
        """Component means `mu_k` `[..., K]`."""
        return self._means

    @property
    def log_scales(self):
        """Component log-scales `log s_k` `[..., K]`, clamped below at `log_scale_min`."""
        return self._log_scales

    def _component_log_probs(self, x, edges=True):
        """log P_k(bin of x) for every component: `[..., K]`.

        `edges=False` uses the interior formula everywhere (the mass of `[x - delta,
        x + delta]`, also beyond the edge bins), which is what `log_density` needs.
        """
        delta = self.delta
        x = ops.expand_dims(x, -1)
        log_s = self._log_scales
        centred = x - self._means
        inv_s = ops.exp(-log_s)
        plus_in = inv_s * (centred + delta)
        min_in = inv_s * (centred - delta)

        # Edge bins: all the mass below -1 + delta, or above 1 - delta.
        log_cdf_plus = _log_sigmoid(plus_in)
        log_one_minus_cdf_min = -ops.softplus(min_in)

        # Interior bins: log(sigma(plus_in) - sigma(min_in)). This is the same number as the
        # plain difference but computed without cancellation, through the identity
        #   sigma(a) - sigma(b) = sigma(a) * sigma(-b) * (1 - exp(-(a - b))),
        # with a - b = 2 delta / s formed directly. (The plain float32 difference has an
        # absolute error of ~6e-8, i.e. up to ~1% relative error near the 1e-5 threshold.)
        width = (2.0 * delta) * inv_s
        log_one_minus_exp = ops.log(ops.maximum(-ops.expm1(-width), _TINY))
        log_cdf_delta = log_cdf_plus + _log_sigmoid(-min_in) + log_one_minus_exp

        # Fallback for tiny bin masses: density at the centre times the bin width 2 delta.
        mid_in = inv_s * centred
        log_pdf_mid = mid_in - log_s - 2.0 * ops.softplus(mid_in)
        log_pdf_bin = log_pdf_mid + math.log(2.0 * delta)

        interior = ops.where(log_cdf_delta > _LOG_CDF_DELTA_THRESHOLD, log_cdf_delta, log_pdf_bin)
        if not edges:
            return interior
        return ops.where(
            x < -1.0 + delta,
            log_cdf_plus,
            ops.where(x > 1.0 - delta, log_one_minus_cdf_min, interior),
        )

    def log_prob(self, x):
        """Log probability of the quantization bin that contains `x`, in nats.

        Args:
            x: float tensor broadcastable to `params.shape[:-1]` (normally equal to it).
                Any real value is accepted and it is never rounded: at a bin centre this is
                the exact bin probability; between centres it is the mass of the bin of
                width `2 delta` centred on `x` (so it is smooth in `x`, as the distillation
                loss needs). Values below `-1 + delta` (above `1 - delta`) use the lower
                (upper) edge bin, which holds all the mass below `x + delta` (above
                `x - delta`).

        Returns:
            Tensor of shape `params.shape[:-1]` with `log P(bin of x)`; gradients with
            respect to `x` and `params` are finite everywhere.
        """
        x = ops.convert_to_tensor(x)
        if keras.backend.standardize_dtype(x.dtype) != self.dtype:
            x = ops.cast(x, self.dtype)
        log_probs = self._component_log_probs(x)
        log_mix = log_probs + _log_weights(self._logits)
        return ops.logsumexp(log_mix, axis=-1)

    def log_density(self, x):
        """Log density at any real `x`, in nats: the mass of `[x - delta, x + delta]` / (2 delta).

        This is the mixture of logistics convolved with a uniform box of one bin width: a
        proper density on the whole real line (it integrates to 1), bounded above by
        `1 / (2 delta)`, smooth in `x`, and for components much wider than a bin equal to the
        continuous logistic-mixture density up to a relative `(delta / s)^2 / 6`. Unlike
        `log_prob(x) - log(2 delta)` it has no edge bins: beyond `-1 + delta` or `1 - delta`
        `log_prob` returns the whole tail mass, which divided by the bin width is not a
        density (at x = -1.01, mu = 0, s = 0.3 it is about +7 nats instead of -2.2). The
        distillation KL scores the student's unclipped draws with this.

        Args:
            x: float tensor broadcastable against `params.shape[:-1]` (for example `[M, B,
                T]` draws against `[B, T, 3K]` parameters: the parameters are broadcast,
                not copied).

        Returns:
            Tensor of the broadcast shape with `log p(x)`; finite gradients everywhere.
        """
        x = ops.convert_to_tensor(x)
        if keras.backend.standardize_dtype(x.dtype) != self.dtype:
            x = ops.cast(x, self.dtype)
        log_probs = self._component_log_probs(x, edges=False)
        log_mix = log_probs + _log_weights(self._logits)
        return ops.logsumexp(log_mix, axis=-1) - math.log(2.0 * self.delta)

    def _select_component(self, u_component):
        """One-hot `[..., K]` of the component picked by inverse-CDF with uniforms `[...]`."""
        k = self._num_components
        u = ops.cast(ops.convert_to_tensor(u_component), self.dtype)
        cdf = ops.cumsum(ops.exp(_log_weights(self._logits)), axis=-1)
        index = ops.sum(ops.cast(cdf < ops.expand_dims(u, -1), "int32"), axis=-1)
        index = ops.minimum(index, k - 1)  # cdf[-1] may round below u
        return ops.one_hot(index, k, dtype=self.dtype)

    def sample(self, u_component, u_logistic, eps=1e-5):
        """Draws samples from explicit uniform noise (deterministic given the noise).

        The component is chosen by inverse CDF: the first `k` with
        `cumsum(softmax(logits))_k >= u_component`. Then
        `x = mu_k + s_k * (log u - log(1 - u))` with `u = clip(u_logistic, eps, 1 - eps)`,
        clipped to [-1, 1]. The result is continuous (not rounded to bin centres); it is
        differentiable with respect to the means and log-scales (not the component choice).

        Args:
            u_component: uniforms in (0, 1), shape `params.shape[:-1]`.
            u_logistic: uniforms in (0, 1), shape `params.shape[:-1]`.
            eps: clip for `u_logistic`, bounding the logistic noise to +-log((1-eps)/eps).

        Returns:
            Tensor of shape `params.shape[:-1]` with values in [-1, 1].
        """
        one_hot = self._select_component(u_component)
        mu = ops.sum(self._means * one_hot, axis=-1)
        log_s = ops.sum(self._log_scales * one_hot, axis=-1)
        u = ops.cast(ops.convert_to_tensor(u_logistic), self.dtype)
        u = ops.clip(u, eps, 1.0 - eps)
        x = mu + ops.exp(log_s) * (ops.log(u) - ops.log1p(-u))
        return ops.clip(x, -1.0, 1.0)

    def mean(self):
        """Mixture mean `sum_k pi_k mu_k`, clipped to [-1, 1] (ignores the clipped tails)."""
        pi = ops.exp(_log_weights(self._logits))
        return ops.clip(ops.sum(pi * self._means, axis=-1), -1.0, 1.0)


def _squeeze_target(y_true, y_pred):
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    return y_true


def _mix_logistic_nll(y_true, y_pred, num_classes, log_scale_min):
    dist = DiscretizedMixLogistic(y_pred, num_classes=num_classes, log_scale_min=log_scale_min)
    return -dist.log_prob(_squeeze_target(y_true, dist._params))


def mix_logistic_nll_loss(y_true, y_pred, num_classes=65536, log_scale_min=-14.0):
    """Mean negative log-likelihood (nats per sample) of audio under the mixture.

    Args:
        y_true: audio in [-1, 1], `[B, T]` (or `[B, T, 1]`), normally at bin centres.
        y_pred: mixture parameters `[B, T, 3K]`.
        num_classes: quantization levels (65536 for 16-bit).
        log_scale_min: floor on the log-scales.

    Returns:
        Scalar tensor: the mean NLL in nats. Divide by `ln 2` for bits per sample; a uniform
        model over 16-bit values scores `16 ln 2 = 11.09` nats.
    """
    return ops.mean(_mix_logistic_nll(y_true, y_pred, num_classes, log_scale_min))


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class DiscretizedMixLogisticLoss(keras.losses.Loss):
    """Keras loss: negative log-likelihood of audio under a discretized logistic mixture.

    `call` returns the per-sample NLL `[B, T]` in nats, so the default
    `"sum_over_batch_size"` reduction gives the mean NLL per audio sample.

    Args:
        num_classes: quantization levels (65536 for 16-bit, 256 for 8-bit).
        log_scale_min: floor on the log-scales.
        name, reduction, dtype: as for `keras.losses.Loss`.
    """

    def __init__(
        self,
        num_classes=65536,
        log_scale_min=-14.0,
        name="discretized_mix_logistic_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        _validate_num_classes(num_classes)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.num_classes = num_classes
        self.log_scale_min = float(log_scale_min)

    def call(self, y_true, y_pred):
        return _mix_logistic_nll(y_true, y_pred, self.num_classes, self.log_scale_min)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "log_scale_min": self.log_scale_min})
        return config
