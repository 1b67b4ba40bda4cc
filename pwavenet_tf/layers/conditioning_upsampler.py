"""Learned upsampler of frame-rate conditioning to the sample rate."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class ConditioningUpsampler(keras.layers.Layer):
    """Upsamples `[batch, frames, dim]` features to `[batch, frames * prod(factors), channels]`.

    A non-causal pre-convolution (kernel `pre_kernel_size`, "same" padding: conditioning is
    known ahead of time) maps the features to `channels`; then one learned transposed
    convolution per factor f (kernel f, stride f: each frame becomes f learned linear
    images of itself) followed by a leaky ReLU.

    Design against saturation: there is no bounded activation anywhere (a tanh-based
    upsampler saturates and the teacher learns to ignore its conditioning), the leaky
    ReLU keeps a slope of `leaky_slope` on negative inputs, and every transposed
    convolution starts as nearest-neighbour repetition (identity blocks), so at
    initialisation the output is the pre-convolved features repeated, never a constant.

    Args:
        channels: output channels.
        upsample_factors: list of integer strides; their product is the hop length.
        pre_kernel_size: kernel of the frame-rate pre-convolution (odd).
        leaky_slope: negative slope of the leaky ReLU.
    """

    def __init__(self, channels, upsample_factors, pre_kernel_size=3, leaky_slope=0.4, **kwargs):
        super().__init__(**kwargs)
        upsample_factors = [int(f) for f in upsample_factors]
        if not upsample_factors or any(f < 1 for f in upsample_factors):
            raise ValueError(
                "`upsample_factors` must be a non-empty list of positive integers. "
                f"Received: upsample_factors={upsample_factors}"
            )
        if pre_kernel_size < 1 or pre_kernel_size % 2 == 0:
            raise ValueError(
                f"`pre_kernel_size` must be a positive odd integer. Received: {pre_kernel_size}"
            )
        if not 0.0 < leaky_slope <= 1.0:
            raise ValueError(f"`leaky_slope` must be in (0, 1]. Received: leaky_slope={leaky_slope}")
        self.channels = channels
        self.upsample_factors = upsample_factors
        self.pre_kernel_size = pre_kernel_size
        self.leaky_slope = leaky_slope
        self.pre_conv = keras.layers.Conv1D(channels, pre_kernel_size, padding="same",
                                            name="pre_conv", dtype=self.dtype_policy)

    @property
    def hop_length(self):
        return int(np.prod(self.upsample_factors))

    def build(self, input_shape):
        self.pre_conv.build(input_shape)
        self.upsample_kernels = []
        self.upsample_biases = []
        c = self.channels
        for i, f in enumerate(self.upsample_factors):
            # [c, f * c]: f identity blocks, i.e. nearest-neighbour repetition at init.
            init = np.tile(np.eye(c, dtype="float32"), (1, f))
            self.upsample_kernels.append(
                self.add_weight(name=f"upsample_{i}_kernel", shape=(c, f * c),
                                initializer=keras.initializers.Constant(init))
            )
            self.upsample_biases.append(
                self.add_weight(name=f"upsample_{i}_bias", shape=(c,), initializer="zeros")
            )

    def call(self, features):
        return self._upsample(self.pre_conv(features))

    def _upsample(self, h):
        """The learned repetitions of `[batch, frames, channels]` up to the sample rate."""
        batch = ops.shape(h)[0]
        dtype = self.compute_dtype  # `stream` runs outside `__call__`'s autocast
        for kernel, bias, f in zip(self.upsample_kernels, self.upsample_biases,
                                   self.upsample_factors):
            frames = ops.shape(h)[1]
            h = ops.reshape(ops.matmul(h, ops.cast(kernel, dtype)),
                            (batch, frames * f, self.channels)) + ops.cast(bias, dtype)
            h = ops.leaky_relu(h, negative_slope=self.leaky_slope)
        return h

    # --- Streaming (frames arriving in chunks; see `StreamingVocoder`) ---

    @property
    def look_ahead_frames(self):
        """Frames after a frame that its conditioning depends on (the pre-convolution's
        half width); the same number before it."""
        return self.pre_kernel_size // 2

    def stream(self, frames):
        """Conditioning of the middle frames of `frames` `[batch, n, dim]` (n > 2 * half):
        `[batch, (n - 2 * half) * hop, channels]`, for the frames `half .. n - half - 1`,
        equal to what `call` gives for them on the whole sequence when `frames` holds
        their true neighbours (zeros beyond the ends). The caller keeps the last
        `2 * half` frames as the context of the next chunk and, at the end, appends `half`
        zero frames (see `student_synthesis.stream_step`)."""
        dtype = self.compute_dtype  # called directly: cast the variables as `__call__` would
        h = ops.conv(ops.cast(frames, dtype), ops.cast(self.pre_conv.kernel, dtype), strides=1,
                     padding="valid")
        return self._upsample(h + ops.cast(self.pre_conv.bias, dtype))

    def compute_output_shape(self, input_shape):
        frames = input_shape[1]
        t = None if frames is None else frames * self.hop_length
        return (input_shape[0], t, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "upsample_factors": list(self.upsample_factors),
                "pre_kernel_size": self.pre_kernel_size,
                "leaky_slope": self.leaky_slope,
            }
        )
        return config
