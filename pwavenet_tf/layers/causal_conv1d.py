"""Causal dilated 1-D convolution with a full-sequence mode and a one-step (cached) mode."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class CausalConv1D(keras.layers.Layer):
    """Causal dilated convolution: output t sees inputs t - (k-1)*d, ..., t - d, t.

    Two call modes share the same kernel:
    - `call(x)`: the whole sequence `[batch, time, in]` -> `[batch, time, filters]`, by left
      padding with `(kernel_size - 1) * dilation_rate` zeros.
    - `step(x_t, state, position)`: one timestep `[batch, in]` with an explicit queue
      `state` of the last `(kernel_size - 1) * dilation_rate` inputs `[batch, queue, in]`;
      returns the output `[batch, filters]` and the updated queue. Starting from
      `initial_state` (zeros) this reproduces `call` exactly ("fast WaveNet" generation).
      With `position` (the step's index t) the queue is a ring buffer: x_t overwrites slot
      `t mod queue` (the oldest input, x_{t-queue}) with one `slice_update` and the taps
      are read at slots `(t + j*d) mod queue`. Under XLA the update is in place, O(in)
      values per step whatever the queue's length (TensorFlow's graph executor copies the
      tensor instead; the teacher's generator therefore keeps its queues in a TensorArray,
      see `WaveNetTeacher.cached_step`). Without `position` the queue is kept in time
      order and shifted by one every step (a copy of the whole queue per step).

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

    def step_kernel(self):
        """The kernel as one matrix `[kernel_size * in, filters]` for flattened taps (oldest
        tap first), in the compute dtype: a view of the variable, which is unchanged."""
        in_channels = self.kernel.shape[1]
        kernel = ops.reshape(self.kernel, (self.kernel_size * in_channels, self.filters))
        return ops.cast(kernel, self.compute_dtype)

    def step_taps(self, x_t, state, position=None):
        """The inputs one output sees, flattened oldest first `[batch, k * in]`, and the new
        queue. `position`: see `step`."""
        in_channels = self.kernel.shape[1]
        if not self.queue_length:
            return x_t, state
        tap_offsets = list(range(0, self.queue_length, self.dilation_rate))
        if position is None:
            taps = ops.take(state, tap_offsets, axis=1)
            new_state = ops.concatenate([state[:, 1:], x_t[:, None, :]], axis=1)
        else:
            # Slot p holds x_{t-queue} (the oldest tap); slot (p + j*d) mod queue holds
            # x_{t-queue+j*d}. x_t then replaces the oldest input at slot p.
            p = ops.mod(ops.cast(position, "int32"), self.queue_length)
            slots = ops.mod(p + ops.convert_to_tensor(tap_offsets, "int32"), self.queue_length)
            taps = ops.take(state, slots, axis=1)
            zero = ops.zeros((), "int32")
            new_state = ops.slice_update(state, ops.stack([zero, p, zero]),
                                         ops.cast(x_t[:, None, :], state.dtype))
        taps = ops.concatenate([taps, ops.cast(x_t[:, None, :], taps.dtype)], axis=1)
        return ops.reshape(taps, (-1, self.kernel_size * in_channels)), new_state

    def step(self, x_t, state, position=None):
        """One timestep: `x_t` `[batch, in]`, `state` `[batch, (k-1)*d, in]`.

        `position`: the index t of this step (int scalar, may be a tensor) for the in-place
        ring buffer; None for the time-ordered queue. A queue must be stepped in one mode
        only, from `initial_state`.
        """
        taps, new_state = self.step_taps(x_t, state, position)
        y = ops.matmul(ops.cast(taps, self.compute_dtype), self.step_kernel())
        if self.use_bias:
            y = y + ops.cast(self.bias, self.compute_dtype)
        return y, new_state

    def stream(self, x, state):
        """A chunk of a stream: `x` `[batch, time, in]` (time >= 1) after the queue `state`
        `[batch, (k-1)*d, in]` of the inputs just before it (`initial_state` at the start).

        Returns the outputs `[batch, time, filters]` and the new queue (the last `(k-1)*d`
        inputs of `state` followed by `x`). Chunks of any sizes give, concatenated, the
        output of `call` on the whole sequence: the queue replaces `call`'s zero padding.
        """
        # Called directly, outside `__call__`'s autocast: the compute dtype by hand.
        dtype = self.compute_dtype
        x = ops.cast(x, dtype)
        if self.queue_length:
            x = ops.concatenate([ops.cast(state, dtype), x], axis=1)
            new_state = x[:, -self.queue_length:]
        else:
            new_state = state
        kernel = ops.cast(self.kernel, dtype)
        if self.kernel_size == 1:
            y = ops.matmul(x, kernel[0])
        else:
            y = ops.conv(x, kernel, strides=1, padding="valid", dilation_rate=self.dilation_rate)
        if self.use_bias:
            y = y + ops.cast(self.bias, dtype)
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
