"""Learned upsampler of frame-rate conditioning to the sample rate."""

import keras
import numpy as np
from keras import ops

INTERPOLATIONS = ("none", "linear")


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

    `interpolation="linear"` removes the frame-periodic pattern of the learned repetitions.
    With the default ("none") each of the f positions of a frame gets its own learned
    linear image, so a stationary input (silence, a held vowel) gives a conditioning that
    repeats every hop: the vocoder's output then carries lines at the harmonics of the
    frame rate (172.3 Hz, 1,378 Hz... at 22,050 Hz and hop 256). With "linear" every
    stage interpolates linearly between neighbouring units (half-unit centred positions,
    like `align_corners=False`) and then applies ONE learned linear map (`[c, c]`) and the
    leaky ReLU to every position alike: a constant input gives a constant output. Each
    stage looks at most one unit ahead, so the conditioning looks `pre_kernel_size // 2 +
    len(upsample_factors)` frames ahead; `call` is `stream` over the features padded with
    that many zero frames on each side, so streaming equals the one pass by construction.

    Args:
        channels: output channels.
        upsample_factors: list of integer strides; their product is the hop length.
        pre_kernel_size: kernel of the frame-rate pre-convolution (odd).
        leaky_slope: negative slope of the leaky ReLU.
        interpolation: "none" (learned per-position repetitions) or "linear" (see above).
    """

    def __init__(self, channels, upsample_factors, pre_kernel_size=3, leaky_slope=0.4,
                 interpolation="none", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"`interpolation` must be one of {INTERPOLATIONS}. Received: "
                             f"interpolation={interpolation!r}")
        self.interpolation = interpolation
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
            # [c, f * c]: f identity blocks, i.e. nearest-neighbour repetition at init;
            # [c, c] (identity: plain linear interpolation at init) with "linear".
            reps = 1 if self.interpolation == "linear" else f
            init = np.tile(np.eye(c, dtype="float32"), (1, reps))
            self.upsample_kernels.append(
                self.add_weight(name=f"upsample_{i}_kernel", shape=(c, reps * c),
                                initializer=keras.initializers.Constant(init))
            )
            self.upsample_biases.append(
                self.add_weight(name=f"upsample_{i}_bias", shape=(c,), initializer="zeros")
            )

    def call(self, features):
        if self.interpolation == "linear":
            half = self.look_ahead_frames
            return self.stream(ops.pad(features, [[0, 0], [half, half], [0, 0]]))
        return self._upsample(self.pre_conv(features))

    def _interpolate(self, h):
        """`[batch, units, c]` -> `[batch, units * f, c]` per stage: linear interpolation
        (edge units replicated), one shared linear map and the leaky ReLU."""
        dtype = self.compute_dtype
        for kernel, bias, f in zip(self.upsample_kernels, self.upsample_biases,
                                   self.upsample_factors):
            padded = ops.concatenate([h[:, :1], h, h[:, -1:]], axis=1)
            prev, cur, nxt = padded[:, :-2, None], padded[:, 1:-1, None], padded[:, 2:, None]
            u = (np.arange(f, dtype="float32") + 0.5) / f - 0.5  # offsets in (-0.5, 0.5)
            w_prev = ops.cast(np.maximum(-u, 0.0)[:, None], dtype)
            w_cur = ops.cast((1.0 - np.abs(u))[:, None], dtype)
            w_next = ops.cast(np.maximum(u, 0.0)[:, None], dtype)
            h = w_prev * prev + w_cur * cur + w_next * nxt  # [batch, units, f, c]
            h = ops.reshape(h, (ops.shape(h)[0], ops.shape(h)[1] * f, self.channels))
            h = ops.matmul(h, ops.cast(kernel, dtype)) + ops.cast(bias, dtype)
            h = ops.leaky_relu(h, negative_slope=self.leaky_slope)
        return h

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
        half width, plus one per stage with "linear"); the same number before it."""
        extra = len(self.upsample_factors) if self.interpolation == "linear" else 0
        return self.pre_kernel_size // 2 + extra

    def stream(self, frames):
        """Conditioning of the middle frames of `frames` `[batch, n, dim]` (n > 2 * half):
        `[batch, (n - 2 * half) * hop, channels]`, for the frames `half .. n - half - 1`,
        equal to what `call` gives for them on the whole sequence when `frames` holds
        their true neighbours (zeros beyond the ends). The caller keeps the last
        `2 * half` frames as the context of the next chunk and, at the end, appends `half`
        zero frames (see `student_synthesis.stream_step`)."""
        dtype = self.compute_dtype  # called directly: cast the variables as `__call__` would
        h = ops.conv(ops.cast(frames, dtype), ops.cast(self.pre_conv.kernel, dtype), strides=1,
                     padding="valid") + ops.cast(self.pre_conv.bias, dtype)
        if self.interpolation == "linear":
            # `context` extra frames on each side absorb the replicated edges: each stage's
            # inexact border grows by at most one of its input units (<= one frame).
            context = len(self.upsample_factors) * self.hop_length
            h = self._interpolate(h)
            return h[:, context:ops.shape(h)[1] - context]
        return self._upsample(h)

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
                "interpolation": self.interpolation,
            }
        )
        return config
