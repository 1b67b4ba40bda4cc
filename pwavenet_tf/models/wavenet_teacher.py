"""The autoregressive WaveNet teacher."""

import math

import keras
import numpy as np
from keras import ops

from pwavenet_tf.distributions.categorical_mu_law import CategoricalMuLaw, CategoricalMuLawLoss
from pwavenet_tf.distributions.discretized_mix_logistic import (
    DiscretizedMixLogistic,
    DiscretizedMixLogisticLoss,
)
from pwavenet_tf.layers.causal_conv1d import CausalConv1D, receptive_field
from pwavenet_tf.layers.conditioning_upsampler import ConditioningUpsampler
from pwavenet_tf.models.conditioned_model import ConditionedModel
from pwavenet_tf.models.distributed_build import DistributedBuildMixin
from pwavenet_tf.layers.feature_normalizer import FeatureNormalizer
from pwavenet_tf.layers.residual_block import ResidualBlock

MOL = "mixture_of_logistics"
MU_LAW = "mu_law"
INITIAL_LOG_SCALE = -3.0
INPUT_GAIN = 10.0


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class WaveNetTeacher(DistributedBuildMixin, ConditionedModel, keras.Model):
    """Conditional WaveNet over raw audio, trained by teacher forcing.

    Inputs (a dict): `audio` float32 `[batch, samples]` in [-1, 1], `features` float32
    `[batch, frames, conditioning_dim]` (raw log-mel or other frame features; the model
    normalises them with the dataset statistics it stores), and, when `num_speakers > 1`,
    `speaker_id` int32 `[batch]`. `samples == frames * prod(upsample_factors)`.

    Output: the parameters `[batch, samples, num_params]` of p(x_t | x_<t, c) for every t
    (the input audio is shifted right by one sample inside the model, so position t never
    sees x_t). With `output_distribution="mixture_of_logistics"` the parameters are those of
    a 16-bit discretized mixture of `num_mixtures` logistics; with `"mu_law"` the logits of
    a `mu_law_channels`-way mu-law categorical.

    The same layers serve training (`call`), cached and naive generation
    (`pwavenet_tf.models.teacher_generator`) and export: `step` runs one timestep of the
    stack with explicit convolution queues.

    Args:
        conditioning_dim: width of the frame features (n_mels for log-mel).
        num_layers, num_cycles: residual blocks, dilations 1, 2, ..., 2^(L/cycles - 1)
            repeated `num_cycles` times.
        filter_size: taps of the dilated convolutions (the paper: 3).
        residual_channels, gate_channels, skip_channels: widths.
        output_distribution: "mixture_of_logistics" or "mu_law".
        num_mixtures: logistic components (the paper: 10).
        mu_law_channels: classes of the mu-law output.
        log_scale_min: lower bound of the logistic log-scales.
        conditioning_channels: width of the upsampled conditioning.
        upsample_factors: strides of the upsampler; their product is the hop length.
        num_speakers: > 1 adds a speaker embedding (global conditioning).
        speaker_channels: width of that embedding.
        input_mu_law: compand the network input with continuous mu-law (see
            `_input_transform`).
        feature_mean, feature_std: dataset statistics of the features (or set later with
            `set_feature_stats`).
    """

    def __init__(
        self,
        conditioning_dim,
        num_layers=30,
        num_cycles=3,
        filter_size=3,
        residual_channels=64,
        gate_channels=128,
        skip_channels=64,
        output_distribution=MOL,
        num_mixtures=10,
        mu_law_channels=256,
        log_scale_min=-14.0,
        conditioning_channels=80,
        upsample_factors=(16, 16),
        num_speakers=0,
        speaker_channels=16,
        input_mu_law=True,
        feature_mean=None,
        feature_std=None,
        **kwargs,
    ):
        if output_distribution not in (MOL, MU_LAW):
            raise ValueError(
                f"`output_distribution` must be '{MOL}' or '{MU_LAW}'. "
                f"Received: output_distribution={output_distribution!r}"
            )
        if num_layers % num_cycles:
            raise ValueError(
                f"`num_cycles` must divide `num_layers`. Received: num_layers={num_layers}, "
                f"num_cycles={num_cycles}"
            )
        per_cycle = num_layers // num_cycles
        dilations = [2 ** (i % per_cycle) for i in range(num_layers)]
        num_params = 3 * num_mixtures if output_distribution == MOL else mu_law_channels
        dtype = kwargs.pop("dtype", None)

        # === Layers ===
        self.feature_normalizer = FeatureNormalizer(
            conditioning_dim, feature_mean, feature_std, name="feature_normalizer", dtype=dtype
        )
        self.upsampler = ConditioningUpsampler(
            conditioning_channels, upsample_factors, name="upsampler", dtype=dtype
        )
        self.speaker_embedding = None
        if num_speakers > 1:
            self.speaker_embedding = keras.layers.Embedding(
                num_speakers, speaker_channels, name="speaker_embedding", dtype=dtype
            )
        self.input_proj = CausalConv1D(residual_channels, 1, name="input_proj", dtype=dtype)
        self.blocks = [
            ResidualBlock(residual_channels, gate_channels, skip_channels, filter_size, d,
                          use_residual=i < num_layers - 1, name=f"block_{i}", dtype=dtype)
            for i, d in enumerate(dilations)
        ]
        self.head_hidden = keras.layers.Dense(skip_channels, name="head_hidden", dtype=dtype)
        # The distribution parameters stay float32 under mixed precision. The logistic
        # log-scales start at INITIAL_LOG_SCALE (s ~ 0.05, the spread of speech) rather than
        # 0 (s = 1, wider than the whole [-1, 1] range), which speeds early training.
        bias = np.zeros(num_params, "float32")
        if output_distribution == MOL:
            bias[2 * num_mixtures:] = INITIAL_LOG_SCALE
        self.head_params = keras.layers.Dense(
            num_params, name="head_params", dtype="float32",
            kernel_initializer=keras.initializers.VarianceScaling(0.1),
            bias_initializer=keras.initializers.Constant(bias),
        )

        # === Functional model ===
        self.input_mu_law = input_mu_law
        audio = keras.Input((None,), name="audio")
        features = keras.Input((None, conditioning_dim), name="features")
        inputs = {"audio": audio, "features": features}
        speaker_id = None
        if num_speakers > 1:
            speaker_id = keras.Input((), dtype="int32", name="speaker_id")
            inputs["speaker_id"] = speaker_id
        conditioning = self.upsample_conditioning(features)
        global_conditioning = self.global_conditioning(speaker_id)
        params = self.params_from_conditioning(audio, conditioning, global_conditioning)
        super().__init__(inputs=inputs, outputs=params, dtype=dtype, **kwargs)

        # === Config ===
        self.conditioning_dim = conditioning_dim
        self.num_layers = num_layers
        self.num_cycles = num_cycles
        self.filter_size = filter_size
        self.residual_channels = residual_channels
        self.gate_channels = gate_channels
        self.skip_channels = skip_channels
        self.output_distribution = output_distribution
        self.num_mixtures = num_mixtures
        self.mu_law_channels = mu_law_channels
        self.log_scale_min = log_scale_min
        self.conditioning_channels = conditioning_channels
        self.upsample_factors = list(upsample_factors)
        self.num_speakers = num_speakers
        self.speaker_channels = speaker_channels
        self.dilations = dilations
        self.num_params = num_params

    # --- Pieces of the forward pass (shared by call, generation and export) ---

    @property
    def receptive_field(self):
        """Samples of past audio that one output depends on: (k - 1) * sum(d) + 1."""
        return receptive_field(self.filter_size, self.dilations)

    def params_from_conditioning(self, audio, conditioning, global_conditioning=None):
        """Teacher-forced pass given upsampled conditioning: audio `[B, T]` -> `[B, T, P]`."""
        shifted = ops.pad(audio[:, :-1], [[0, 0], [1, 0]])
        h = self.input_proj(self._input_transform(shifted))
        skips = None
        for block in self.blocks:
            h, skip = block(h, conditioning, global_conditioning)
            skips = skip if skips is None else skips + skip
        return self._head(skips)

    def _input_transform(self, x):
        """Network input features of audio `[...]` -> `[..., 2]` (no quantisation).

        Speech sits mostly within +-0.1, so the first layer sees the sample twice: linearly
        scaled by INPUT_GAIN (keeps linear prediction easy) and continuous mu-law companded
        (resolves quiet passages). Both are smooth in x, so distillation gradients flow
        through the teacher's input. `input_mu_law=False` feeds the raw sample only.
        """
        if not self.input_mu_law:
            return ops.expand_dims(x, -1)
        companded = ops.sign(x) * ops.log1p(255.0 * ops.abs(x)) / math.log(256.0)
        return ops.stack([x * INPUT_GAIN, companded], axis=-1)

    def _head(self, skips):
        skips = skips * (1.0 / math.sqrt(len(self.blocks)))
        h = self.head_hidden(ops.relu(skips))
        return self.head_params(ops.relu(h))

    def initial_state(self, batch_size, dtype="float32"):
        """Convolution queues of every block for `step`."""
        return [block.initial_state(batch_size, dtype) for block in self.blocks]

    def step(self, x_prev, conditioning_t, global_conditioning, state, position=None):
        """One generation step from the previous sample `x_prev` `[B]`.

        `conditioning_t` is the upsampled conditioning at this timestep `[B, C]`.
        Returns the distribution parameters `[B, P]` of the current sample and the new
        queues. `position`: the step's index t for ring-buffer queues (see
        `CausalConv1D.step`). The layer-by-layer reference of `cached_step`.
        """
        h, _ = self.input_proj.step(self._input_transform(x_prev), None)
        skips = None
        new_state = []
        for block, queue in zip(self.blocks, state):
            (h, skip), queue = block.step(h, conditioning_t, global_conditioning, queue,
                                          position)
            new_state.append(queue)
            skips = skip if skips is None else skips + skip
        return self._head(skips), new_state

    # --- Cached ("fast WaveNet") generation, as `TeacherGenerator` runs it ---
    #
    # The queues of all blocks live in one ring of rows `[sum(dilations), B, (k-1) * R]`:
    # block i owns rows `offset_i + r` for r in [0, d_i); at step t its row
    # `offset_i + t mod d_i` holds the k-1 earlier taps x_{t-(k-1)d}, ..., x_{t-d}
    # (oldest first), which is what the dilated convolution needs with x_t, and is then
    # replaced by x_{t-(k-2)d}, ..., x_t. One gather reads every block's taps and one
    # scatter writes them back: O(layers * k * R) values per step, not the queues' length.

    def cached_ring_layout(self):
        """`(row_offsets, dilations, row_width)` of the cached step's ring (None for
        filter_size 1, which keeps no queue)."""
        if self.filter_size == 1:
            return None
        offsets = [0]
        for d in self.dilations[:-1]:
            offsets.append(offsets[-1] + d)
        return offsets, list(self.dilations), (self.filter_size - 1) * self.residual_channels

    def cached_plan(self, global_conditioning=None):
        """What the cached step reads but never changes, computed once per utterance:
        the step matrices of every block (residual and skip projections fused, see
        `ResidualBlock.step_weights`) and the conditioning projection of all blocks as one
        matrix `[C, blocks * gate]` with the per-utterance gate biases `[1 or B, blocks *
        gate]` (conv biases and global conditioning). Derived from the variables at call
        time; the variables and checkpoints are unchanged."""
        dtype = self.blocks[0].compute_dtype
        return {
            "dtype": dtype,
            "in_kernel": ops.cast(self.input_proj.kernel[0], dtype),
            "in_bias": ops.cast(self.input_proj.bias, dtype),
            "blocks": [block.step_weights() for block in self.blocks],
            "cond_kernel": ops.concatenate(
                [ops.cast(b.conditioning_proj.kernel, dtype) for b in self.blocks], axis=1),
            "gate_bias": ops.concatenate(
                [ops.reshape(b.gate_bias(global_conditioning), (-1, self.gate_channels))
                 for b in self.blocks], axis=1),
        }

    def project_conditioning(self, conditioning, plan):
        """Upsampled conditioning `[B, n, C]` -> every block's gate input from it
        (projection plus gate biases), time-major `[n, blocks, B, gate]`: one matmul for
        all blocks and n timesteps."""
        batch, n = ops.shape(conditioning)[0], ops.shape(conditioning)[1]
        g = ops.matmul(ops.cast(conditioning, plan["dtype"]), plan["cond_kernel"])
        g = g + ops.expand_dims(plan["gate_bias"], 1)
        g = ops.reshape(g, (batch, n, len(self.blocks), self.gate_channels))
        return ops.transpose(g, (1, 2, 0, 3))

    def cached_step(self, x_prev, rows, gate_inputs, plan):
        """One generation step of the whole stack.

        Args:
            x_prev: the previous sample `[B]`.
            rows: every block's ring row at this step `[blocks, B, (k-1) * R]` (see
                `cached_ring_layout`), None for filter_size 1.
            gate_inputs: this step's `[blocks, B, gate]` from `project_conditioning`.
            plan: `cached_plan(...)`.

        Returns:
            The parameters `[B, P]` of the current sample and the rows to write back
            `[blocks, B, (k-1) * R]` (None for filter_size 1).
        """
        x = ops.cast(self._input_transform(x_prev), plan["dtype"])
        h = ops.matmul(x, plan["in_kernel"]) + plan["in_bias"]
        block_rows = [None] * len(self.blocks) if rows is None else ops.unstack(rows, axis=0)
        gates = ops.unstack(gate_inputs, axis=0)
        skips, all_taps = [], []
        for block, row, gate, weights in zip(self.blocks, block_rows, gates, plan["blocks"]):
            taps = h if row is None else ops.concatenate([row, h], axis=-1)
            all_taps.append(taps)
            h, skip = block.step_from_taps(taps, h, gate, weights)
            skips.append(skip)
        new_rows = None
        if rows is not None:
            new_rows = ops.stack(all_taps, axis=0)[:, :, self.residual_channels:]
        return self._head(ops.sum(ops.stack(skips, axis=0), axis=0)), new_rows

    # --- The output distribution ---

    def distribution(self, params):
        """The output distribution object for parameters `[..., P]`."""
        params = ops.cast(params, "float32")
        if self.output_distribution == MOL:
            return DiscretizedMixLogistic(params, num_classes=65536,
                                          log_scale_min=self.log_scale_min)
        return CategoricalMuLaw(params, channels=self.mu_law_channels)

    def make_loss(self):
        """The teacher-forcing loss (mean NLL in nats per sample)."""
        if self.output_distribution == MOL:
            return DiscretizedMixLogisticLoss(num_classes=65536, log_scale_min=self.log_scale_min)
        return CategoricalMuLawLoss(channels=self.mu_law_channels)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "conditioning_dim": self.conditioning_dim,
            "num_layers": self.num_layers,
            "num_cycles": self.num_cycles,
            "filter_size": self.filter_size,
            "residual_channels": self.residual_channels,
            "gate_channels": self.gate_channels,
            "skip_channels": self.skip_channels,
            "output_distribution": self.output_distribution,
            "num_mixtures": self.num_mixtures,
            "mu_law_channels": self.mu_law_channels,
            "log_scale_min": self.log_scale_min,
            "conditioning_channels": self.conditioning_channels,
            "upsample_factors": list(self.upsample_factors),
            "num_speakers": self.num_speakers,
            "speaker_channels": self.speaker_channels,
            "input_mu_law": self.input_mu_law,
            "feature_mean": self.feature_normalizer.get_config()["mean"],
            "feature_std": self.feature_normalizer.get_config()["std"],
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_pwavenet_config(cls, config, feature_mean=None, feature_std=None, **kwargs):
        """Builds the teacher of a `pwavenet_tf.config.Config` (kwargs: e.g. `dtype`)."""
        t = config.teacher
        return cls(
            conditioning_dim=config.audio.conditioning_dim,
            num_layers=t.num_layers,
            num_cycles=t.num_cycles,
            filter_size=t.filter_size,
            residual_channels=t.residual_channels,
            gate_channels=t.gate_channels,
            skip_channels=t.skip_channels,
            output_distribution=t.output_distribution,
            num_mixtures=t.num_mixtures,
            mu_law_channels=t.mu_law_channels,
            log_scale_min=t.log_scale_min,
            conditioning_channels=t.conditioning_channels,
            upsample_factors=t.upsample_factors,
            num_speakers=config.audio.num_speakers,
            speaker_channels=t.speaker_channels,
            input_mu_law=t.input_mu_law,
            feature_mean=feature_mean,
            feature_std=feature_std,
            **kwargs,
        )
