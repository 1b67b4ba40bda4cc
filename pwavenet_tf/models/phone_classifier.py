"""`PhoneClassifier`: the WaveNet-like frame classifier behind the perceptual loss.

Parallel WaveNet's perceptual loss compares generated and real audio through the features
of a network trained to recognise phonetic content (style loss on the Gram matrices of
those features, `pwavenet_tf.losses.perceptual_loss`). This is that network: a small
non-causal WaveNet on raw audio `[batch, samples]` that outputs per-frame class logits
`[batch, samples // hop_length, num_classes]`. The classes are real phones when a label
file is given, otherwise pseudo-phones (k-means clusters of MFCC frames), see
`pwavenet_tf.training.pseudo_phones`.

Architecture (all at the sample rate until the pooling):

    x   = sign(a) log(1 + mu |a|) / log(1 + mu)           (mu-law companding of audio a;
                                                           input_mu=0 disables it)
    h_0 = W_in x                                          (1x1 conv, 1 -> channels)
    z_i = tanh(p_i) * sigmoid(q_i),  [p_i, q_i] = DilatedConv_i(h_{i-1})  ("same" padding)
    h_i = (h_{i-1} + W_i z_i) * sqrt(1/2)                 (residual)
    e   = log(1 + Pool_hop((W_out h_L)^2) / 1e-4)         (log band energies, frame rate)
    f   = relu(W_f e)
    logits = W_logits f                                   (small init: starts near uniform)

`Pool_hop` averages the `hop_length` samples of frame i centred on sample `i * hop_length`
(the `LogMelSpectrogram` convention, so frame i lines up with feature frame i). The
companding and the log energies (a learned log filterbank) were chosen by measurement:
on three LJ Speech clips with 8 pseudo-phones, 100 training steps reached a frame accuracy
of ~0.3 with raw linear input (speech at RMS 0.1 keeps the gated units in their
near-linear range) and ~0.45-0.5 with the companded input (chance: ~0.2).

Dilations are `2^(i mod dilation_cycle)`. The convolutions are non-causal (a classifier may
look ahead), so the receptive field is `(filter_size - 1) * sum(dilations) + 1` samples
centred on each sample, then pooled over the `hop_length` samples of each frame.

`feature_maps(audio)` returns the intermediate activations used by the perceptual loss:
`Pool_hop(relu(h_i))` for every residual block, then `e` and `f`; all at frame rate
`[batch, frames, channels]` so that Gram matrices stay cheap (`num_layers + 2` maps).
`call` and `feature_maps` run the same layers through one forward-pass implementation
(`forward`).
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["PhoneClassifier"]

ENERGY_FLOOR = 1e-4


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class PhoneClassifier(keras.Model):
    """Frame-level phone (or pseudo-phone) classifier on raw audio.

    Input: audio float32 `[batch, samples]` in [-1, 1] (`samples` a multiple of
    `hop_length`; extra samples are ignored). Output: logits
    `[batch, samples // hop_length, num_classes]` (float32 even under mixed precision).

    Args:
        num_classes: number of (pseudo-)phone classes.
        hop_length: samples per frame (that of the vocoder's features).
        num_layers: residual blocks.
        channels: residual width (the gated convolutions have `2 * channels` outputs).
        filter_size: taps of the dilated convolutions.
        dilation_cycle: dilations are 1, 2, ..., 2^(dilation_cycle - 1), repeated.
        input_mu: mu of the mu-law companding of the input audio (0: none).
        seed: optional int making the weight initialisation deterministic.
    """

    def __init__(
        self,
        num_classes,
        hop_length,
        num_layers=6,
        channels=32,
        filter_size=3,
        dilation_cycle=6,
        input_mu=255.0,
        seed=None,
        **kwargs,
    ):
        for name, value, minimum in (
            ("num_classes", num_classes, 2),
            ("hop_length", hop_length, 1),
            ("num_layers", num_layers, 1),
            ("channels", channels, 1),
            ("filter_size", filter_size, 1),
            ("dilation_cycle", dilation_cycle, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}"
                )
        dilations = [2 ** (i % dilation_cycle) for i in range(num_layers)]
        input_mu = float(input_mu)
        if not input_mu >= 0.0:
            raise ValueError(f"`input_mu` must be >= 0. Received: input_mu={input_mu}")
        dtype = kwargs.pop("dtype", None)
        counter = [0]

        def init():
            if seed is None:
                return "glorot_uniform"
            counter[0] += 1
            return keras.initializers.GlorotUniform(seed=seed * 1000 + counter[0])

        # === Layers ===
        self.input_proj = keras.layers.Conv1D(
            channels, 1, kernel_initializer=init(), name="input_proj", dtype=dtype
        )
        self.dilated_convs = [
            keras.layers.Conv1D(
                2 * channels, filter_size, dilation_rate=d, padding="same",
                kernel_initializer=init(), name=f"dilated_conv_{i}", dtype=dtype,
            )
            for i, d in enumerate(dilations)
        ]
        self.residual_projs = [
            keras.layers.Dense(channels, kernel_initializer=init(), name=f"residual_proj_{i}",
                               dtype=dtype)
            for i in range(num_layers)
        ]
        self.output_proj = keras.layers.Dense(
            channels, kernel_initializer=init(), name="output_proj", dtype=dtype
        )
        self.pool = keras.layers.AveragePooling1D(
            hop_length, strides=hop_length, padding="valid", name="frame_pool", dtype=dtype
        )
        self.frame_proj = keras.layers.Dense(
            channels, kernel_initializer=init(), name="frame_proj", dtype=dtype
        )
        # Small initial logits: training starts near the uniform distribution.
        self.logits_layer = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.VarianceScaling(
                0.1, seed=None if seed is None else seed * 1000
            ),
            name="logits",
            dtype="float32",
        )

        # === Config === (set first: `forward` reads hop_length and input_mu)
        self.num_classes = num_classes
        self.hop_length = hop_length
        self.num_layers = num_layers
        self.channels = channels
        self.filter_size = filter_size
        self.dilation_cycle = dilation_cycle
        self.seed = seed
        self.dilations = dilations
        self.input_mu = input_mu

        # === Functional model ===
        audio = keras.Input((None,), name="audio")
        _, logits = self.forward(audio)
        super().__init__(inputs=audio, outputs=logits, dtype=dtype, **kwargs)

    @property
    def receptive_field(self):
        """Samples (centred) that one sample-rate activation depends on."""
        return (self.filter_size - 1) * sum(self.dilations) + 1

    @property
    def num_feature_maps(self):
        return self.num_layers + 2

    def _to_frames(self, x):
        """Average over each frame's `hop_length` samples, centred on sample `i * hop`.

        Same convention as `LogMelSpectrogram` (frame i centred on sample i * hop_length):
        shift right by hop // 2 (zeros in front), then average-pool by hop_length.
        """
        half = self.hop_length // 2
        if half:
            x = ops.pad(x[:, :-half], [[0, 0], [half, 0], [0, 0]])
        return self.pool(x)

    def forward(self, audio):
        """The one forward pass: audio `[B, T]` -> (feature maps list, logits `[B, F, K]`)."""
        x = audio
        if self.input_mu:
            # mu-law companding: sign(x) log(1 + mu |x|) / log(1 + mu); smooth, and keeps
            # quiet passages (and unusually quiet recordings) in the useful range.
            scale = 1.0 / math.log1p(self.input_mu)
            x = ops.sign(x) * ops.log1p(self.input_mu * ops.abs(x)) * scale
        h = self.input_proj(ops.expand_dims(x, -1))
        features = []
        for conv, proj in zip(self.dilated_convs, self.residual_projs):
            a, b = ops.split(conv(h), 2, axis=-1)
            z = ops.tanh(a) * ops.sigmoid(b)
            h = (h + proj(z)) * math.sqrt(0.5)
            features.append(self._to_frames(ops.relu(h)))
        energy = self._to_frames(ops.square(self.output_proj(h)))
        compressed = ops.log1p(energy * (1.0 / ENERGY_FLOOR))
        frame = ops.relu(self.frame_proj(compressed))
        features.extend([compressed, frame])
        return features, self.logits_layer(frame)

    def feature_maps(self, audio):
        """Frame-rate activations `[[B, T // hop, channels]] * (num_layers + 2)` of `audio`."""
        features, _ = self.forward(ops.cast(ops.convert_to_tensor(audio), "float32"))
        return features

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "hop_length": self.hop_length,
            "num_layers": self.num_layers,
            "channels": self.channels,
            "filter_size": self.filter_size,
            "dilation_cycle": self.dilation_cycle,
            "input_mu": self.input_mu,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
