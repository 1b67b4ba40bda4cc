"""The Parallel WaveNet student: a stack of inverse-autoregressive flows."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from pwavenet_tf.layers.conditioning_upsampler import ConditioningUpsampler
from pwavenet_tf.models.conditioned_model import ConditionedModel
from pwavenet_tf.layers.feature_normalizer import FeatureNormalizer
from pwavenet_tf.layers.causal_highpass import CausalHighpass
from pwavenet_tf.models.highpass_bijector import CausalHighpassBijector
from pwavenet_tf.models.iaf_bijector import IAFBijector
from pwavenet_tf.models.iaf_flow import IAFFlow

tfb = tfp.bijectors
tfd = tfp.distributions

# Initial log of the total scale s_tot of the whole stack: exp(-3) ~= 0.05, about the
# standard deviation of speech in [-1, 1] (0.05-0.1). Each flow starts at 1/N of it.
INITIAL_LOG_SCALE = -3.0


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class IAFStudent(ConditionedModel, keras.Model):
    """Parallel WaveNet student: logistic noise -> audio in one parallel pass.

    Inputs (a dict): `noise` float32 `[batch, samples]` (logistic(0, 1) noise z),
    `features` float32 `[batch, frames, conditioning_dim]` (raw frame features, normalised
    inside with the stored dataset statistics) and, when `num_speakers > 1`, `speaker_id`
    int32 `[batch]`. `samples == frames * prod(upsample_factors)`.

    Outputs (a dict of `[batch, samples]` float32): `audio` x, `mu_tot` and `log_s_tot`.
    The flows are applied in order with the running update (z = x^(0))

        x <- x * s_i + mu_i,   mu_tot <- mu_tot * s_i + mu_i,   log_s_tot += log_s_i

    so that x_t = z_t * s_tot_t + mu_tot_t and, given z_<t (equivalently x_<t),
    p_S(x_t | x_<t) = Logistic(mu_tot_t, exp(log_s_tot_t)). `sum_t log_s_tot_t` is the
    log-determinant of the whole flow.

    Each flow (`IAFFlow`) is a conditioned causal WaveNet with no skip connections that
    sees only earlier samples of its own input. One feature normaliser and one upsampler
    are shared by all flows (each flow's residual blocks project the upsampled
    conditioning themselves), as is the optional speaker embedding.

    The single forward pass is `forward_from_conditioning`; the functional graph, the
    generator (`StudentGenerator`), the distiller and export all call it. The TFP view
    (`bijector`, `distribution`, `inverse`, `log_prob`) wraps the same layers.

    Args:
        conditioning_dim: width of the frame features.
        flow_layers: residual blocks of each flow (the paper: 10, 10, 10, 30).
        dilation_cycle: dilations 1, 2, ..., 2^(cycle-1), repeated within each flow.
        channels: residual width of the flows (the paper: 64).
        filter_size: taps of the dilated convolutions.
        conditioning_channels: width of the upsampled conditioning.
        upsample_factors: strides of the upsampler; their product is the hop length.
        num_speakers: > 1 adds a speaker embedding (global conditioning).
        speaker_channels: width of that embedding.
        log_scale_min, log_scale_max: soft bounds of every flow's log-scale.
        initial_log_scale: initial log of the TOTAL scale s_tot of the whole stack
            (each of the N flows starts with log_s = initial_log_scale / N and mu = 0, so
            at initialisation x = z * exp(initial_log_scale)). The default -3.0 gives
            s_tot ~= 0.05: a logistic of scale 0.05 has std ~0.09, the order of speech in
            [-1, 1] (std ~0.05-0.1), so the untrained student already emits signals of a
            plausible level instead of unit-scale noise that would clip everywhere.
        feature_mean, feature_std: dataset statistics of the features.
        upsampler_interpolation: the `ConditioningUpsampler`'s `interpolation` ("none",
            or "linear": no frame-rate lines on stationary input).
        output_highpass: cutoff (cycles per sample) of a `CausalHighpass` after the flows
            (0: none): an autoregressive shift that removes a DC offset and sub-cutoff
            drift; `mu_tot` moves by its shift, `log_s_tot` stays.
    """

    def __init__(
        self,
        conditioning_dim,
        flow_layers=(10, 10, 10, 30),
        dilation_cycle=10,
        channels=64,
        filter_size=3,
        conditioning_channels=64,
        upsample_factors=(16, 16),
        num_speakers=0,
        speaker_channels=16,
        log_scale_min=-7.0,
        log_scale_max=3.0,
        initial_log_scale=INITIAL_LOG_SCALE,
        feature_mean=None,
        feature_std=None,
        upsampler_interpolation="none",
        output_highpass=0.0,
        **kwargs,
    ):
        flow_layers = [int(n) for n in flow_layers]
        if not flow_layers or any(n < 1 for n in flow_layers):
            raise ValueError(
                "`flow_layers` must be a non-empty list of positive layer counts. "
                f"Received: flow_layers={flow_layers}"
            )
        per_flow = initial_log_scale / len(flow_layers)
        if not log_scale_min < per_flow < log_scale_max:
            raise ValueError(
                f"`initial_log_scale / num_flows` ({per_flow}) must lie inside "
                f"({log_scale_min}, {log_scale_max}). Received: "
                f"initial_log_scale={initial_log_scale}"
            )
        dtype = kwargs.pop("dtype", None)

        # === Layers ===
        self.feature_normalizer = FeatureNormalizer(
            conditioning_dim, feature_mean, feature_std, name="feature_normalizer", dtype=dtype
        )
        self.upsampler = ConditioningUpsampler(
            conditioning_channels, upsample_factors, interpolation=upsampler_interpolation,
            name="upsampler", dtype=dtype
        )
        if not 0.0 <= output_highpass < 0.5:
            raise ValueError("`output_highpass` must be 0 (off) or a cutoff in (0, 0.5) "
                             f"cycles per sample. Received: output_highpass={output_highpass}")
        self.output_highpass = float(output_highpass)
        # float32 under any policy: it acts on the float32 running x (see the forward pass).
        self.highpass = (CausalHighpass(self.output_highpass, name="output_highpass",
                                        dtype="float32")
                         if self.output_highpass > 0 else None)
        self.speaker_embedding = None
        if num_speakers > 1:
            self.speaker_embedding = keras.layers.Embedding(
                num_speakers, speaker_channels, name="speaker_embedding", dtype=dtype
            )
        self.flows = [
            IAFFlow(n, channels, filter_size, dilation_cycle, log_scale_min, log_scale_max,
                    per_flow, name=f"flow_{i}", dtype=dtype)
            for i, n in enumerate(flow_layers)
        ]

        # === Functional model ===
        noise = keras.Input((None,), name="noise")
        features = keras.Input((None, conditioning_dim), name="features")
        inputs = {"noise": noise, "features": features}
        speaker_id = None
        if num_speakers > 1:
            speaker_id = keras.Input((), dtype="int32", name="speaker_id")
            inputs["speaker_id"] = speaker_id
        conditioning = self.upsample_conditioning(features)
        global_conditioning = self.global_conditioning(speaker_id)
        outputs = self.forward_from_conditioning(noise, conditioning, global_conditioning)
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.conditioning_dim = conditioning_dim
        self.flow_layers = flow_layers
        self.dilation_cycle = dilation_cycle
        self.channels = channels
        self.filter_size = filter_size
        self.conditioning_channels = conditioning_channels
        self.upsample_factors = list(upsample_factors)
        self.num_speakers = num_speakers
        self.speaker_channels = speaker_channels
        self.log_scale_min = log_scale_min
        self.log_scale_max = log_scale_max
        self.initial_log_scale = initial_log_scale

    # --- Pieces of the forward pass (shared by call, generation, distillation, export) ---

    @property
    def receptive_field(self):
        """Past noise samples that x_t depends on: x_t is a function of z_{t-R}..z_t."""
        return sum(flow.receptive_field for flow in self.flows)

    def forward_from_conditioning(self, noise, conditioning, global_conditioning=None):
        """The parallel pass: noise z `[B, T]` -> dict of `audio`, `mu_tot`, `log_s_tot`."""
        x = ops.cast(noise, "float32")
        mu_tot = log_s_tot = None
        for flow in self.flows:
            mu, log_s = flow(x, conditioning, global_conditioning)
            # The running x, mu_tot and log_s_tot stay float32 under mixed precision (the
            # flows' float32 output projection already gives float32 mu and log_s).
            mu, log_s = ops.cast(mu, "float32"), ops.cast(log_s, "float32")
            s = ops.exp(log_s)
            x = x * s + mu
            if mu_tot is None:
                mu_tot, log_s_tot = mu, log_s
            else:
                mu_tot = mu_tot * s + mu
                log_s_tot = log_s_tot + log_s
        if self.highpass is not None:
            # Of x_<t only: a shift of p_S(x_t | z_<t).
            shift = self.highpass(x, shift_only=True)
            x, mu_tot = x + shift, mu_tot + shift
        return {"audio": x, "mu_tot": mu_tot, "log_s_tot": log_s_tot}

    # --- The TFP view (sequential inverse: short sequences only) ---

    def _check_features(self, features, speaker_id):
        features = tf.convert_to_tensor(features, tf.float32)
        if features.shape.rank != 3 or features.shape[-1] != self.conditioning_dim:
            raise ValueError(
                f"`features` must be [batch, frames, {self.conditioning_dim}]. "
                f"Received: features.shape={features.shape}"
            )
        if self.multi_speaker:
            if speaker_id is None:
                raise ValueError("This student is multi-speaker: pass `speaker_id`.")
            speaker_id = tf.convert_to_tensor(speaker_id, tf.int32)
            if speaker_id.shape.rank != 1:
                raise ValueError(
                    f"`speaker_id` must be [batch]. Received: speaker_id.shape={speaker_id.shape}"
                )
        else:
            speaker_id = None  # single-speaker: ids (0 by convention) are ignored
        return features, speaker_id

    def _check_audio(self, audio, features):
        audio = tf.convert_to_tensor(audio, tf.float32)
        if audio.shape.rank != 2:
            raise ValueError(
                f"`audio` must be [batch, samples]. Received: audio.shape={audio.shape}"
            )
        frames = features.shape[1]
        if audio.shape[1] is not None and frames is not None:
            if audio.shape[1] != frames * self.hop_length:
                raise ValueError(
                    f"`audio` has {audio.shape[1]} samples but the features give {frames} "
                    f"frames * hop {self.hop_length} = {frames * self.hop_length}. "
                    f"Received: audio.shape={audio.shape}, features.shape={features.shape}"
                )
        return audio

    def bijector(self, features, speaker_id=None):
        """`tfb.Chain` of one `IAFBijector` per flow (z -> x), built from the layers now."""
        features, speaker_id = self._check_features(features, speaker_id)
        conditioning = self.upsample_conditioning(features)
        global_conditioning = self.global_conditioning(speaker_id)
        bijectors = [
            IAFBijector(flow, conditioning, global_conditioning, name=f"iaf_{i}")
            for i, flow in enumerate(self.flows)
        ]
        if self.highpass is not None:
            bijectors.append(CausalHighpassBijector(self.highpass))
        # Chain applies its list right to left: flow_0 first.
        return tfb.Chain(list(reversed(bijectors)), name="iaf_student")

    def distribution(self, features, speaker_id=None):
        """p_S over `[batch, frames * hop]`: logistic(0, 1) noise pushed through the flows."""
        chain = self.bijector(features, speaker_id)
        conditioning = chain.bijectors[0].conditioning
        zeros = tf.zeros(tf.shape(conditioning)[:2], tf.float32)
        base = tfd.Independent(tfd.Logistic(zeros, tf.ones_like(zeros)),
                               reinterpreted_batch_ndims=1)
        return tfd.TransformedDistribution(base, chain, name="iaf_student")

    def inverse(self, audio, features, speaker_id=None):
        """x -> z (sequential: O(T) passes per flow, for short sequences)."""
        features, speaker_id = self._check_features(features, speaker_id)
        audio = self._check_audio(audio, features)
        return self.bijector(features, speaker_id).inverse(audio)

    def log_prob(self, audio, features, speaker_id=None):
        """log p_S(audio) `[batch]` in nats (sequential inverse: short sequences)."""
        features, speaker_id = self._check_features(features, speaker_id)
        audio = self._check_audio(audio, features)
        return self.distribution(features, speaker_id).log_prob(audio)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "conditioning_dim": self.conditioning_dim,
            "flow_layers": list(self.flow_layers),
            "dilation_cycle": self.dilation_cycle,
            "channels": self.channels,
            "filter_size": self.filter_size,
            "conditioning_channels": self.conditioning_channels,
            "upsample_factors": list(self.upsample_factors),
            "num_speakers": self.num_speakers,
            "speaker_channels": self.speaker_channels,
            "log_scale_min": self.log_scale_min,
            "log_scale_max": self.log_scale_max,
            "initial_log_scale": self.initial_log_scale,
            "feature_mean": self.feature_normalizer.get_config()["mean"],
            "feature_std": self.feature_normalizer.get_config()["std"],
            "upsampler_interpolation": self.upsampler.interpolation,
            "output_highpass": self.output_highpass,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_pwavenet_config(cls, config, feature_mean=None, feature_std=None, **kwargs):
        """Builds the student of a `pwavenet_tf.config.Config` (`kwargs`: e.g. `dtype`)."""
        s = config.student
        return cls(
            **kwargs,
            conditioning_dim=config.audio.conditioning_dim,
            flow_layers=s.flow_layers,
            dilation_cycle=s.dilation_cycle,
            channels=s.channels,
            filter_size=s.filter_size,
            conditioning_channels=s.conditioning_channels,
            upsample_factors=s.upsample_factors,
            num_speakers=config.audio.num_speakers,
            speaker_channels=s.speaker_channels,
            log_scale_min=s.log_scale_min,
            log_scale_max=s.log_scale_max,
            initial_log_scale=s.initial_log_scale,
            upsampler_interpolation=s.upsampler_interpolation,
            output_highpass=s.output_highpass_hz / config.audio.sample_rate,
            feature_mean=feature_mean,
            feature_std=feature_std,
        )
