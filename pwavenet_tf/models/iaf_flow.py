"""One inverse-autoregressive flow of the Parallel WaveNet student."""

import math

import keras
from keras import ops

from pwavenet_tf.layers.causal_conv1d import CausalConv1D, receptive_field
from pwavenet_tf.layers.residual_block import ResidualBlock


def soft_clamp(x, lo, hi):
    """Smoothly bounds `x` into (lo, hi): `lo + softplus(x - lo)`, then `hi - softplus(hi - y)`.

    Differentiable everywhere with a gradient in (0, 1] (never a hard clip that kills the
    gradient), monotonic, and close to the identity well inside the interval. The upper
    bound is strict; the lower one holds up to `log1p(exp(-(hi - lo)))` (4.5e-5 for the
    default (-7, 3)).
    """
    y = lo + ops.softplus(x - lo)
    return hi - ops.softplus(hi - y)


def soft_clamp_inverse(y, lo, hi):
    """The pre-activation `x` with `soft_clamp(x, lo, hi) == y`, for `lo < y < hi` (a float)."""
    if not lo < y < hi:
        raise ValueError(f"Need lo < y < hi. Received: y={y}, lo={lo}, hi={hi}")

    def softplus_inverse(v):  # log(exp(v) - 1), stable for large v
        return v + math.log(-math.expm1(-v))

    y1 = hi - softplus_inverse(hi - y)
    return lo + softplus_inverse(y1 - lo)


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class IAFFlow(keras.layers.Layer):
    """One IAF flow: a conditioned causal WaveNet, without skip connections, over its noise.

        mu_t, log_s_t = f(z_<t, c, g),     x_t = z_t * exp(log_s_t) + mu_t

    `call(z, conditioning, global_conditioning=None)` returns `(mu, log_s)`, each
    `[batch, time]`. The input `z` `[batch, time]` is shifted right by one sample (a zero
    enters at t = 0), so `mu_t` and `log_s_t` depend only on `z_<t` (strictly causal), on the
    upsampled conditioning `[batch, time, C]` up to t and on the optional global
    conditioning `[batch, G]`. The flow applies no transform itself: the student
    (`IAFStudent`) and the bijector (`IAFBijector`) combine `z`, `mu` and `log_s`.

    Network: a kernel-1 causal projection 1 -> `channels`, `num_layers` gated residual
    blocks (`skip_channels=0`, gate `2 * channels`, dilations `2 ** (i % dilation_cycle)`,
    every block adds its own projection of the conditioning), then relu and a float32
    `Dense(2)` whose kernel starts at zero and whose bias starts so that the flow begins as
    `x = z * exp(initial_log_scale)` (mu = 0).

    `log_s` is bounded into (`log_scale_min`, `log_scale_max`) by `soft_clamp`, a smooth
    clamp that never zeroes the gradient and is ~identity in the middle.

    Args:
        num_layers: residual blocks.
        channels: residual width.
        filter_size: taps of the dilated causal convolutions.
        dilation_cycle: dilations restart at 1 every `dilation_cycle` layers.
        log_scale_min, log_scale_max: bounds of `log_s`.
        initial_log_scale: `log_s` at initialisation (inside the bounds).
    """

    def __init__(
        self,
        num_layers,
        channels=64,
        filter_size=3,
        dilation_cycle=10,
        log_scale_min=-7.0,
        log_scale_max=3.0,
        initial_log_scale=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_layers", num_layers), ("channels", channels),
                            ("filter_size", filter_size), ("dilation_cycle", dilation_cycle)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: {name}={value!r}"
                )
        if not log_scale_min < log_scale_max:
            raise ValueError(
                "`log_scale_min` must be < `log_scale_max`. Received: "
                f"log_scale_min={log_scale_min}, log_scale_max={log_scale_max}"
            )
        if not log_scale_min < initial_log_scale < log_scale_max:
            raise ValueError(
                f"`initial_log_scale` must lie strictly inside ({log_scale_min}, "
                f"{log_scale_max}). Received: initial_log_scale={initial_log_scale}"
            )
        self.num_layers = num_layers
        self.channels = channels
        self.filter_size = filter_size
        self.dilation_cycle = dilation_cycle
        self.log_scale_min = float(log_scale_min)
        self.log_scale_max = float(log_scale_max)
        self.initial_log_scale = float(initial_log_scale)
        self.dilations = [2 ** (i % dilation_cycle) for i in range(num_layers)]

        self.input_proj = CausalConv1D(channels, 1, name="input_proj", dtype=self.dtype_policy)
        self.blocks = [
            ResidualBlock(channels, 2 * channels, 0, filter_size, d, name=f"block_{i}",
                          dtype=self.dtype_policy)
            for i, d in enumerate(self.dilations)
        ]
        raw = soft_clamp_inverse(self.initial_log_scale, self.log_scale_min, self.log_scale_max)
        # mu and log_s stay float32 under mixed precision.
        self.output_proj = keras.layers.Dense(
            2, name="output_proj", dtype="float32", kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant([0.0, raw]),
        )

    @property
    def receptive_field(self):
        """Samples of z history that (mu_t, log_s_t) depend on: z_{t-R}..z_{t-1}.

        The conv stack spans (k - 1) * sum(d) + 1 positions of the shifted input, which are
        the same number of past samples of z (the one-sample shift is included).
        """
        return receptive_field(self.filter_size, self.dilations)

    def build(self, z_shape, conditioning_shape, global_conditioning_shape=None):
        z_shape = tuple(z_shape)
        if len(z_shape) != 2:
            raise ValueError(f"`z` must be [batch, time]. Received: z.shape={z_shape}")
        if len(conditioning_shape) != 3:
            raise ValueError(
                "`conditioning` must be [batch, time, channels]. "
                f"Received: conditioning.shape={tuple(conditioning_shape)}"
            )
        hidden = z_shape + (self.channels,)
        self.input_proj.build(z_shape + (1,))
        for block in self.blocks:
            block.build(hidden, conditioning_shape, global_conditioning_shape)
        self.output_proj.build(hidden)

    def call(self, z, conditioning, global_conditioning=None):
        if len(z.shape) != 2:
            raise ValueError(f"`z` must be [batch, time]. Received: z.shape={z.shape}")
        if len(conditioning.shape) != 3:
            raise ValueError(
                "`conditioning` must be [batch, time, channels]. "
                f"Received: conditioning.shape={conditioning.shape}"
            )
        tz, tc = z.shape[1], conditioning.shape[1]
        if tz is not None and tc is not None and tz != tc:
            raise ValueError(
                f"`z` has {tz} timesteps but `conditioning` has {tc}; they must match. "
                f"Received: z.shape={z.shape}, conditioning.shape={conditioning.shape}"
            )
        shifted = ops.pad(z[:, :-1], [[0, 0], [1, 0]])  # position t sees z_<t only
        h = self.input_proj(ops.expand_dims(shifted, -1))
        for block in self.blocks:
            h = block(h, conditioning, global_conditioning)
        out = self.output_proj(ops.relu(h))
        mu = out[..., 0]
        log_s = soft_clamp(out[..., 1], self.log_scale_min, self.log_scale_max)
        return mu, log_s

    # --- Streaming (the input arriving in chunks; see `StreamingVocoder`) ---

    def stream_initial_state(self, batch_size, dtype="float32"):
        """The state of a stream before its first sample: the previous input sample
        `[batch, 1]` (zero: the shift's padding) and, per residual block, the queue of its
        dilated convolution's last `(k-1)*d` inputs `[batch, (k-1)*d, channels]` (zeros).
        Its size does not depend on the length of the stream."""
        queues = [ops.zeros((batch_size, b.conv.queue_length, self.channels), dtype=dtype)
                  for b in self.blocks]
        return [ops.zeros((batch_size, 1), dtype=dtype)] + queues

    def stream(self, z, conditioning, global_conditioning, state):
        """`call` on a chunk `z` `[batch, time]` (time >= 1) of a longer input, given the
        `state` after the samples before it (`stream_initial_state` at the start).

        Returns `(mu, log_s, new_state)`. Chunks of any sizes give, concatenated, the
        output of `call` on the whole input (the queues replace the zero padding)."""
        shifted = ops.concatenate([ops.cast(state[0], z.dtype), z[:, :-1]], axis=1)
        new_state = [z[:, -1:]]
        h = self.input_proj(ops.expand_dims(shifted, -1))
        for block, queue in zip(self.blocks, state[1:]):
            y, queue = block.conv.stream(h, queue)
            gated = block._gate(y, conditioning, global_conditioning)
            h = block._outputs(h, gated)
            new_state.append(queue)
        out = self.output_proj(ops.relu(h))
        mu = out[..., 0]
        log_s = soft_clamp(out[..., 1], self.log_scale_min, self.log_scale_max)
        return mu, log_s, new_state

    def compute_output_shape(self, z_shape, conditioning_shape, global_conditioning_shape=None):
        return tuple(z_shape), tuple(z_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "channels": self.channels,
                "filter_size": self.filter_size,
                "dilation_cycle": self.dilation_cycle,
                "log_scale_min": self.log_scale_min,
                "log_scale_max": self.log_scale_max,
                "initial_log_scale": self.initial_log_scale,
            }
        )
        return config
