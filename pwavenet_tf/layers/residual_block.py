"""Gated residual block with local and optional global conditioning."""

import math

import keras
from keras import ops

from pwavenet_tf.layers.causal_conv1d import CausalConv1D


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class ResidualBlock(keras.layers.Layer):
    """WaveNet residual block.

        h = CausalConv(x) + W_c c + W_g g          (c: local, g: global conditioning)
        z = tanh(h[:gate/2]) * sigmoid(h[gate/2:])
        residual = (x + W_r z) * sqrt(1/2),  skip = W_s z

    Call with `block(x, conditioning, global_conditioning=None)`; returns
    `(residual, skip)`, or only `residual` when `skip_channels == 0` (the IAF student's
    flows have no skip connections). `step` is the cached one-timestep version.

    Args:
        residual_channels: channels of x and of the residual output.
        gate_channels: channels before the gate (even; half tanh, half sigmoid).
        skip_channels: channels of the skip output, 0 for none.
        kernel_size: taps of the dilated causal convolution.
        dilation_rate: dilation of that convolution.
        use_residual: False skips the residual projection (the residual output is then the
            input unchanged): for the teacher's last block, whose residual is never used.
    """

    def __init__(
        self,
        residual_channels,
        gate_channels,
        skip_channels,
        kernel_size=3,
        dilation_rate=1,
        use_residual=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if gate_channels % 2:
            raise ValueError(f"`gate_channels` must be even. Received: gate_channels={gate_channels}")
        if skip_channels < 0:
            raise ValueError(f"`skip_channels` must be >= 0. Received: skip_channels={skip_channels}")
        self.residual_channels = residual_channels
        self.gate_channels = gate_channels
        self.skip_channels = skip_channels
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.use_residual = use_residual
        if not use_residual and not skip_channels:
            raise ValueError("A block needs a residual or a skip output (use_residual=False "
                             "requires skip_channels > 0).")
        self.conv = CausalConv1D(gate_channels, kernel_size, dilation_rate, name="dilated_conv",
                                 dtype=self.dtype_policy)
        self.conditioning_proj = keras.layers.Dense(gate_channels, use_bias=False,
                                                    name="conditioning_proj",
                                                    dtype=self.dtype_policy)
        self.global_proj = None
        self.residual_proj = None
        if use_residual:
            self.residual_proj = keras.layers.Dense(residual_channels, name="residual_proj",
                                                    dtype=self.dtype_policy)
        self.skip_proj = None
        if skip_channels:
            self.skip_proj = keras.layers.Dense(skip_channels, name="skip_proj",
                                                dtype=self.dtype_policy)

    def build(self, x_shape, conditioning_shape, global_conditioning_shape=None):
        if x_shape[-1] != self.residual_channels:
            raise ValueError(
                f"Input channels must equal residual_channels={self.residual_channels}. "
                f"Received: x.shape={x_shape}"
            )
        self.conv.build(x_shape)
        self.conditioning_proj.build(conditioning_shape)
        if global_conditioning_shape is not None:
            self.global_proj = keras.layers.Dense(self.gate_channels, use_bias=False,
                                                  name="global_proj", dtype=self.dtype_policy)
            self.global_proj.build(global_conditioning_shape)
        gated_shape = tuple(x_shape[:-1]) + (self.gate_channels // 2,)
        if self.residual_proj is not None:
            self.residual_proj.build(gated_shape)
        if self.skip_proj is not None:
            self.skip_proj.build(gated_shape)

    def _gate(self, h, conditioning, global_conditioning):
        h = h + self.conditioning_proj(conditioning)
        if self.global_proj is not None:
            if global_conditioning is None:
                raise ValueError("This block was built with global conditioning; pass it.")
            g = self.global_proj(global_conditioning)
            h = h + (ops.expand_dims(g, 1) if len(h.shape) == 3 else g)
        a, b = ops.split(h, 2, axis=-1)
        return ops.tanh(a) * ops.sigmoid(b)

    def _outputs(self, x, z):
        residual = x
        if self.residual_proj is not None:
            residual = (x + self.residual_proj(z)) * math.sqrt(0.5)
        if self.skip_proj is None:
            return residual
        return residual, self.skip_proj(z)

    def call(self, x, conditioning, global_conditioning=None):
        z = self._gate(self.conv(x), conditioning, global_conditioning)
        return self._outputs(x, z)

    def initial_state(self, batch_size, dtype="float32"):
        return self.conv.initial_state(batch_size, dtype)

    def step(self, x_t, conditioning_t, global_conditioning, state, position=None):
        """One timestep: returns `(outputs, new_state)`, outputs as in `call`.

        `position`: the step's index t for the in-place ring-buffer queue (see
        `CausalConv1D.step`), None for the time-ordered queue.
        """
        taps, new_state = self.conv.step_taps(x_t, state, position)
        gate_input = (ops.cast(self.conditioning_proj(conditioning_t), self.compute_dtype)
                      + self.gate_bias(global_conditioning))
        return self.step_from_taps(taps, x_t, gate_input, self.step_weights()), new_state

    # --- Pieces of the cached step (also used, hoisted out of the loop, by the teacher) ---

    def step_weights(self):
        """The cached step's matrices in the compute dtype, derived at call time from the
        variables (which stay as they are, so checkpoints are unaffected):

        - `conv_kernel` `[k * residual, gate]`: the dilated convolution for flattened taps;
        - `out_kernel` `[gate / 2, residual + skip]`, `out_bias`: the residual and skip 1x1
          projections side by side (residual columns first), so one matmul gives both.
        """
        kernels, biases = [], []
        for proj in (self.residual_proj, self.skip_proj):
            if proj is not None:
                kernels.append(proj.kernel)
                biases.append(proj.bias)
        out_kernel = kernels[0] if len(kernels) == 1 else ops.concatenate(kernels, axis=1)
        out_bias = biases[0] if len(biases) == 1 else ops.concatenate(biases, axis=0)
        return {
            "conv_kernel": self.conv.step_kernel(),
            "out_kernel": ops.cast(out_kernel, self.compute_dtype),
            "out_bias": ops.cast(out_bias, self.compute_dtype),
        }

    def gate_bias(self, global_conditioning=None):
        """What the gate adds besides the dilated convolution and the local conditioning:
        the convolution's bias plus `W_g g` — `[gate]`, or `[batch, gate]` with global
        conditioning. Constant over an utterance."""
        if self.conv.bias is not None:
            bias = ops.cast(self.conv.bias, self.compute_dtype)
        else:
            bias = ops.zeros((self.gate_channels,), self.compute_dtype)
        if self.global_proj is not None:
            if global_conditioning is None:
                raise ValueError("This block was built with global conditioning; pass it.")
            bias = bias + ops.cast(self.global_proj(global_conditioning), self.compute_dtype)
        return bias

    def step_from_taps(self, taps, x_t, gate_input, weights):
        """The block's outputs at one timestep from its flattened conv taps `[batch, k * in]`
        (`CausalConv1D.step_taps`), its input `x_t` and `gate_input` `[batch, gate]` = the
        projected local conditioning plus `gate_bias`. `weights`: `step_weights()`."""
        h = ops.matmul(ops.cast(taps, self.compute_dtype), weights["conv_kernel"]) + gate_input
        a, b = ops.split(h, 2, axis=-1)
        z = ops.tanh(a) * ops.sigmoid(b)
        out = ops.matmul(z, weights["out_kernel"]) + weights["out_bias"]
        if self.residual_proj is None:
            return x_t, out
        if self.skip_proj is None:
            return (x_t + out) * math.sqrt(0.5)
        r = self.residual_channels
        return (x_t + out[:, :r]) * math.sqrt(0.5), out[:, r:]

    def compute_output_shape(self, x_shape, conditioning_shape, global_conditioning_shape=None):
        if self.skip_proj is None:
            return tuple(x_shape)
        return tuple(x_shape), tuple(x_shape[:-1]) + (self.skip_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "residual_channels": self.residual_channels,
                "gate_channels": self.gate_channels,
                "skip_channels": self.skip_channels,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "use_residual": self.use_residual,
            }
        )
        return config
