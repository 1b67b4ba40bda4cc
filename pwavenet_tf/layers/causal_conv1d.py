"""Causal dilated 1-D convolution with a full-sequence mode and a one-step (cached) mode."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class CausalConv1D(keras.layers.Layer):
    """Causal dilated convolution: output t sees inputs t - (k-1)*d, ..., t - d, t.

    Two call modes share the same kernel:
    - `call(x)`: the whole sequence `[batch, time, in]` -> `[batch, time, filters]`, by left
      padding with `(kernel_size - 1) * dilation_rate` zeros.
    - `step(x_t, state)`: one timestep `[batch, in]` with an explicit queue `state` of the
      last `(kernel_size - 1) * dilation_rate` inputs `[batch, queue, in]`; returns the output
      `[batch, filters]` and the updated queue. Starting from `initial_state` (zeros) this
      reproduces `call` exactly, with O(1) work per step ("fast WaveNet" generation).

    Args:
        filters: output channels.
        kernel_size: taps (the paper uses 3).
        dilation_rate: spacing of the taps.
        use_bias: add a bias.
        kernel_initializer, bias_initializer: Keras initializers.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        dilation_rate=1,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("kernel_size", kernel_size),
                            ("dilation_rate", dilation_rate)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: {name}={value!r}"
                )
        self.filters = filters
        self.kernel_size = kernel_size
        self.dilation_rate = dilation_rate
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    @property
    def queue_length(self):
        """Number of past inputs the one-step mode keeps: (k - 1) * d."""
        return (self.kernel_size - 1) * self.dilation_rate

    def build(self, input_shape):
        in_channels = input_shape[-1]
        if in_channels is None:
            raise ValueError(
                f"The channel dimension of the input must be known. Received: {input_shape}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, in_channels, self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )

    def call(self, x):
        if self.queue_length:
            x = ops.pad(x, [[0, 0], [self.queue_length, 0], [0, 0]])
        if self.kernel_size == 1:
            y = ops.matmul(x, self.kernel[0])
        else:
            y = ops.conv(x, self.kernel, strides=1, padding="valid",
                         dilation_rate=self.dilation_rate)
        if self.use_bias:
            y = y + self.bias
        return y

    def initial_state(self, batch_size, dtype="float32"):
        """The empty queue for `step`: zeros `[batch, (k-1)*d, in_channels]`."""
        return ops.zeros((batch_size, self.queue_length, self.kernel.shape[1]), dtype=dtype)

    def step(self, x_t, state):
        """One timestep: `x_t` `[batch, in]`, `state` `[batch, (k-1)*d, in]`."""
        in_channels = self.kernel.shape[1]
        if self.queue_length:
            taps = ops.take(state, list(range(0, self.queue_length, self.dilation_rate)), axis=1)
            taps = ops.concatenate([taps, x_t[:, None, :]], axis=1)  # [B, k, in]
            new_state = ops.concatenate([state[:, 1:], x_t[:, None, :]], axis=1)
        else:
            taps, new_state = x_t[:, None, :], state
        flat = ops.reshape(taps, (-1, self.kernel_size * in_channels))
        y = ops.matmul(flat, ops.reshape(self.kernel, (self.kernel_size * in_channels, -1)))
        if self.use_bias:
            y = y + self.bias
        return y, new_state

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def receptive_field(kernel_size, dilations):
    """Receptive field in samples of a causal conv stack: (k - 1) * sum(d) + 1."""
    return (kernel_size - 1) * sum(dilations) + 1
