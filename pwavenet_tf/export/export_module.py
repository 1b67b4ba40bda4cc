"""`ExportModule`: a trained student or teacher as a self-describing SavedModel.

The module wraps the model object itself (no second copy of the network for serving) and
builds its serving functions from the model's own forward pieces:

- student (`IAFStudent`): `upsample_conditioning` + `global_conditioning` +
  `forward_from_conditioning`, with logistic noise drawn in the graph by the same philox
  stateless call as `StudentGenerator` (so serving seed `s` == `generate(seed=(s, 0))`);
- teacher (`WaveNetTeacher`): the cached `TeacherGenerator` loop (O(layers) per sample).

Signatures (TF Serving / `loaded.signatures[...]`, keyword inputs; shapes are checked in
the graph, so the input specs are rank-free; docs/serving.md has the full table):

- `serving_default`: `mel` f32 [B, F, n_mels] (raw log-mel), `speaker_id` i32 [B]
  (multi-speaker only), `seed` i64 scalar (SignatureDef default 0) -> `audio` f32
  [B, F * hop] in [-1, 1], `audio_pcm16` i16 [B, F * hop].
- `vocode_waveform`: `audio` f32 [B, S] at the model's rate (+ `speaker_id`, `seed`) ->
  `audio`, `audio_pcm16` [B, (S // hop) * hop]: the resynthesis.
- `mel`: `audio` f32 [B, S] -> `mel` f32 [B, S // hop, n_mels] (raw log-mel: what
  `serving_default` takes) and `normalized_mel` (what the network sees).

The same three functions are also attributes of the loaded object that take ONE dict
(`loaded.serving_default({"mel": m})`, the `seed` key optional),
which is what `keras.layers.TFSMLayer(path, call_endpoint=...)` calls.

Invalid input (wrong rank, wrong n_mels, NaN/Inf, empty, longer than `max_seconds`, bad
speaker ids) fails with `tf.errors.InvalidArgumentError` whose message names the problem;
no output is produced. Metadata travels inside: `config.json` and `feature_stats.json`
assets, and variables `sample_rate`, `hop_length`, `n_mels`, `num_speakers`,
`max_frames`, `max_samples`, `max_seconds`, `default_seed`, `model_role`, `config_json`,
`feature_mean`, `feature_std`.
"""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from pwavenet_tf.audio.front_end import audio_settings, make_log_mel
from pwavenet_tf.audio.quantize import float_to_pcm16
from pwavenet_tf.export.versioning import EXPORT_FORMAT
from pwavenet_tf.models import student_synthesis as synthesis

SERVING_DEFAULT = "serving_default"
VOCODE_WAVEFORM = "vocode_waveform"
MEL = "mel"
STREAM_STEP = "stream_step"
SIGNATURE_NAMES = (SERVING_DEFAULT, VOCODE_WAVEFORM, MEL)
DEFAULT_MAX_SECONDS = 600.0
DEFAULT_CHUNK_SECONDS = 1.0
DEFAULT_SEED = 0
EXPORT_FORMAT_VERSION = 1
CONFIG_ASSET = "config.json"
STATS_ASSET = "feature_stats.json"

__all__ = [
    "DEFAULT_MAX_SECONDS",
    "ExportModule",
    "MEL",
    "SERVING_DEFAULT",
    "SIGNATURE_NAMES",
    "STREAM_STEP",
    "VOCODE_WAVEFORM",
    "model_role",
    "save_export",
]


def model_role(model):
    """"student" for an `IAFStudent`, "teacher" for a `WaveNetTeacher`."""
    from pwavenet_tf.models.iaf_student import IAFStudent
    from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher

    if isinstance(model, IAFStudent):
        return "student"
    if isinstance(model, WaveNetTeacher):
        return "teacher"
    raise ValueError(
        "Only an IAFStudent or a WaveNetTeacher can be exported. "
        f"Received: model of type {type(model).__name__}"
    )


class ExportModule(tf.Module):
    """A trained `IAFStudent` or `WaveNetTeacher` with serving signatures and metadata.

    Args:
        model: the built model (its variables are saved; nothing is copied).
        config: the `pwavenet_tf.config.Config` it was trained with.
        max_seconds: longest input accepted (seconds of audio); longer inputs are rejected
            with an `InvalidArgumentError`.
        default_seed: noise seed used when a request has no `seed`.
        chunk_seconds: the student's signatures run the request this many seconds at a
            time in a `tf.while_loop` carrying the flows' queues (the same audio as one
            pass), so a request's activations are those of one chunk whatever its length;
            None: one parallel pass over the whole request (faster on short requests,
            memory growing with the length).
    """

    def __init__(self, model, config, max_seconds=DEFAULT_MAX_SECONDS,
                 default_seed=DEFAULT_SEED, chunk_seconds=DEFAULT_CHUNK_SECONDS,
                 name="pwavenet_export"):
        super().__init__(name=name)
        role = model_role(model)
        audio = config.audio
        if model.hop_length != audio.hop_length:
            raise ValueError(
                f"The model's hop length {model.hop_length} differs from the config's "
                f"audio.hop_length={audio.hop_length}."
            )
        if model.conditioning_dim != audio.conditioning_dim:
            raise ValueError(
                f"The model's conditioning_dim {model.conditioning_dim} differs from the "
                f"config's {audio.conditioning_dim}."
            )
        try:
            seconds = float(max_seconds)
        except (TypeError, ValueError):
            seconds = float("nan")
        if not np.isfinite(seconds) or seconds <= 0:
            raise ValueError(
                f"`max_seconds` must be a positive number. Received: max_seconds={max_seconds!r}")
        max_seconds = seconds
        if chunk_seconds is not None and not (
                isinstance(chunk_seconds, (int, float)) and not isinstance(chunk_seconds, bool)
                and np.isfinite(chunk_seconds) and chunk_seconds > 0):
            raise ValueError("`chunk_seconds` must be None or a positive number. "
                             f"Received: chunk_seconds={chunk_seconds!r}")
        self._role = role
        self._config = config
        self._hop = int(model.hop_length)
        self._dim = int(audio.conditioning_dim)
        self._sample_rate = int(audio.sample_rate)
        self._multi = bool(model.multi_speaker)
        self._num_speakers = int(audio.num_speakers)
        self._uses_mel = bool(audio.uses_mel)
        self._max_frames = max(1, int(max_seconds * self._sample_rate // self._hop))
        self._max_seconds = max_seconds
        self._default_seed = int(default_seed)
        self._chunk_frames = None
        if chunk_seconds is not None and role == "student":
            self._chunk_frames = max(1, int(round(chunk_seconds * self._sample_rate / self._hop)))
        self._stream_state_size = (sum(synthesis.state_sizes(model)) if role == "student"
                                   else 0)
        # Frames `stream_step` holds back before their audio (the conditioning's look-ahead).
        self._look_ahead_frames = (model.upsampler.look_ahead_frames if role == "student"
                                   else None)

        # Tracked: the model's variables (the functions below capture them).
        self.model = model
        self._mel_layer = make_log_mel(audio) if self._uses_mel else None
        if role == "teacher":
            from pwavenet_tf.models.teacher_generator import TeacherGenerator

            self._generator = TeacherGenerator(model, jit_compile=False, progress_every=0)
        else:
            self._generator = None

        # --- Metadata readable from the loaded object ---
        def const(value, dtype, name):
            return tf.Variable(value, trainable=False, dtype=dtype, name=name)

        stats_mean = np.asarray(model.feature_normalizer.mean, "float32")
        stats_std = np.asarray(model.feature_normalizer.std, "float32")
        self._stats = {"mean": stats_mean.tolist(), "std": stats_std.tolist()}
        self.sample_rate = const(self._sample_rate, tf.int64, "sample_rate")
        self.hop_length = const(self._hop, tf.int64, "hop_length")
        self.n_mels = const(self._dim, tf.int64, "n_mels")
        self.num_speakers = const(self._num_speakers, tf.int64, "num_speakers")
        self.max_frames = const(self._max_frames, tf.int64, "max_frames")
        self.max_samples = const(self._max_frames * self._hop, tf.int64, "max_samples")
        self.max_seconds = const(max_seconds, tf.float32, "max_seconds")
        self.default_seed = const(self._default_seed, tf.int64, "default_seed")
        self.model_role = const(role, tf.string, "model_role")
        self.config_json = const(json.dumps(self.metadata()), tf.string, "config_json")
        self.feature_mean = const(stats_mean, tf.float32, "feature_mean")
        self.feature_std = const(stats_std, tf.float32, "feature_std")
        self.chunk_frames = const(self._chunk_frames or 0, tf.int64, "chunk_frames")
        self.stream_state_size = const(self._stream_state_size, tf.int64, "stream_state_size")

        self._build_functions()

    # ------------------------------------------------------------------ metadata
    @property
    def role(self):
        return self._role

    def metadata(self):
        """JSON-able description of the export (also the `config.json` asset)."""
        inputs = {"mel": f"float32 [batch, frames, {self._dim}] raw log-mel"}
        if self._multi:
            inputs["speaker_id"] = f"int32 [batch] in [0, {self._num_speakers})"
        inputs["seed"] = f"int64 scalar (default {self._default_seed})"
        return {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "role": self._role,
            "sample_rate": self._sample_rate,
            "hop_length": self._hop,
            "n_mels": self._dim,
            "uses_mel": self._uses_mel,
            "num_speakers": self._num_speakers,
            "multi_speaker": self._multi,
            "max_seconds": self._max_seconds,
            "max_frames": self._max_frames,
            "max_samples": self._max_frames * self._hop,
            "default_seed": self._default_seed,
            "chunk_frames": self._chunk_frames,
            "stream_state_size": self._stream_state_size or None,
            "look_ahead_frames": self._look_ahead_frames,
            "front_end": audio_settings(self._config.audio),
            "signatures": self.signature_names(),
            "serving_default_inputs": inputs,
            "config": self._config.to_dict(),
        }

    def signature_names(self):
        names = list(SIGNATURE_NAMES) if self._uses_mel else [SERVING_DEFAULT]
        return names + ([STREAM_STEP] if self._role == "student" else [])

    # ------------------------------------------------------------------ validation
    # Input specs are rank-free (`TensorSpec(None)`): neither the loaded signatures nor TF
    # Serving enforce a spec's shape, and grappler would fold checks against it away. Each
    # check is an `Assert` whose message names the problem and shows the offending
    # value. Conditions are written so that only the relevant one fails (a wrong rank does
    # not also trip the length checks), and shapes are read without indexing past the
    # actual rank (the order in which independent asserts run is not fixed).
    @staticmethod
    def _dims(x, rank):
        """`tf.shape(x)` padded with -1 / cut to `rank` entries (safe for any actual rank)."""
        return tf.concat([tf.shape(x), -tf.ones([rank], tf.int32)], 0)[:rank]

    @staticmethod
    def _static_shape(x, shape):
        """`x` (already validated) with a static shape for tracing, and no runtime op.

        Not `tf.ensure_shape`: grappler trusts its shape for the input too and folds the
        rank checks above away, so a wrong-rank input would trip a later, wrong message.
        """
        x = tf.identity(x)
        x.set_shape(shape)
        return x

    @staticmethod
    def _assert(condition, message, *data):
        return tf.debugging.Assert(condition, [message, *data], summarize=8)

    def _check_length(self, name, ok, batch, length, minimum, maximum, unit):
        return [
            self._assert(tf.logical_or(tf.logical_not(ok), batch > 0),
                         f"`{name}` is empty: its batch size is 0"),
            self._assert(tf.logical_or(tf.logical_not(ok), length >= minimum),
                         f"`{name}` is empty or too short: it needs at least {minimum} {unit}, "
                         "received", length),
            self._assert(tf.logical_or(tf.logical_not(ok), length <= maximum),
                         f"`{name}` is too long: at most {maximum} {unit} "
                         f"(max_seconds={self._max_seconds:g} s set at export), received",
                         length),
        ]

    def _check_finite(self, name, x, checks):
        with tf.control_dependencies(checks):
            bad = tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(x)), tf.int32))
            checks = checks + [self._assert(tf.equal(bad, 0),
                                            f"`{name}` contains NaN or Inf values: count", bad)]
        with tf.control_dependencies(checks):
            return tf.identity(x)

    def _check_mel(self, mel, min_frames=1):
        """Asserts `mel` is finite float [B>=1, min_frames<=F<=max_frames, n_mels]; returns
        it shaped, and the batch size."""
        d = self._dim
        dims = self._dims(mel, 3)
        shape_ok = tf.logical_and(tf.equal(tf.rank(mel), 3), tf.equal(dims[2], d))
        checks = [self._assert(
            shape_ok,
            f"`mel` must be a float32 tensor of shape [batch, frames, {d}] (n_mels={d}), "
            "received shape", tf.shape(mel))]
        checks += self._check_length("mel", shape_ok, dims[0], dims[1], min_frames,
                                     self._max_frames, "frames")
        mel = self._check_finite("mel", mel, checks)
        return self._static_shape(mel, [None, None, d]), tf.shape(mel)[0]

    def _check_audio(self, audio):
        """Asserts `audio` is finite float [B>=1, hop<=S<=max_samples]; trims to whole frames."""
        hop = self._hop
        dims = self._dims(audio, 2)
        shape_ok = tf.equal(tf.rank(audio), 2)
        checks = [self._assert(
            shape_ok, "`audio` must be a float32 tensor of shape [batch, samples], "
            "received shape", tf.shape(audio))]
        checks += self._check_length("audio", shape_ok, dims[0], dims[1], hop,
                                     self._max_frames * hop,
                                     f"samples at {self._sample_rate} Hz")
        audio = self._static_shape(self._check_finite("audio", audio, checks), [None, None])
        frames = tf.shape(audio)[1] // hop
        return audio[:, :frames * hop]

    def _check_seed(self, seed):
        check = self._assert(tf.equal(tf.rank(seed), 0),
                             "`seed` must be an int64 scalar, received shape", tf.shape(seed))
        with tf.control_dependencies([check]):
            return tf.reshape(seed, [])

    def _check_speaker(self, speaker_id, batch):
        n = self._num_speakers
        shape_ok = tf.logical_and(tf.equal(tf.rank(speaker_id), 1),
                                  tf.equal(self._dims(speaker_id, 1)[0], batch))
        checks = [self._assert(
            shape_ok, "`speaker_id` must be an int32 tensor of shape [batch] (one id per "
            "utterance), received shape", tf.shape(speaker_id), "for batch", batch)]
        with tf.control_dependencies(checks):
            in_range = tf.reduce_all(tf.logical_and(speaker_id >= 0, speaker_id < n))
            checks.append(self._assert(
                in_range, f"`speaker_id` must lie in [0, {n}) (num_speakers={n}), received",
                speaker_id))
        with tf.control_dependencies(checks):
            return self._static_shape(tf.identity(speaker_id), [None])

    # ------------------------------------------------------------------ forward
    def _vocode(self, features, speaker_id, seed):
        """Validated raw features `[B, F, D]` -> audio `[B, F * hop]` in [-1, 1]."""
        seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
        model = self.model
        if self._role == "teacher":
            audio = self._generator.generate(features, speaker_id, seed=seed, method="cached")
        else:
            batch = tf.shape(features)[0]
            length = tf.shape(features)[1] * self._hop
            noise = synthesis.draw_logistic_noise(batch, length, seed)
            global_conditioning = model.global_conditioning(speaker_id) if self._multi else None
            audio = synthesis.synthesize(model, features, noise, global_conditioning,
                                         chunk_frames=self._chunk_frames)
        audio = tf.clip_by_value(tf.cast(audio, tf.float32), -1.0, 1.0)
        return {"audio": audio, "audio_pcm16": float_to_pcm16(audio)}

    def _serve(self, mel, speaker_id=None, seed=None):
        mel, batch = self._check_mel(mel)
        if self._multi:
            speaker_id = self._check_speaker(speaker_id, batch)
        seed = tf.constant(self._default_seed, tf.int64) if seed is None else seed
        return self._vocode(mel, speaker_id, self._check_seed(seed))

    def _log_mel(self, audio):
        return self._mel_layer(audio)

    def _serve_waveform(self, audio, speaker_id=None, seed=None):
        audio = self._check_audio(audio)
        return self._serve(self._log_mel(audio), speaker_id, seed)

    def _serve_mel(self, audio):
        audio = self._check_audio(audio)
        mel = self._log_mel(audio)
        return {"mel": mel, "normalized_mel": self.model.feature_normalizer(mel)}

    def _check_stream_inputs(self, state, pushed, final, batch):
        size = self._stream_state_size
        dims = self._dims(state, 2)
        checks = [
            self._assert(tf.logical_and(tf.equal(tf.rank(state), 2),
                                        tf.logical_and(tf.equal(dims[0], batch),
                                                       tf.equal(dims[1], size))),
                         f"`state` must be a float32 tensor of shape [batch, {size}] "
                         "(stream_state_size; zeros to start a stream), received shape",
                         tf.shape(state), "for batch", batch),
            self._assert(tf.equal(tf.rank(pushed), 0),
                         "`pushed` must be an int64 scalar, received shape", tf.shape(pushed)),
            self._assert(tf.equal(tf.rank(final), 0),
                         "`final` must be a bool scalar, received shape", tf.shape(final)),
        ]
        with tf.control_dependencies(checks):
            pushed = tf.reshape(pushed, [])
            checks.append(self._assert(pushed >= 0, "`pushed` must be >= 0, received", pushed))
        state = self._check_finite("state", state, checks)
        with tf.control_dependencies(checks):
            return (self._static_shape(state, [None, size]), tf.identity(pushed),
                    tf.reshape(final, []))

    def _stream(self, mel, state, pushed, seed, final, speaker_id=None):
        """One push of a stateful stream (`student_synthesis.stream_step`, what
        `StreamingVocoder.push` runs), then a flush if `final`."""
        mel, batch = self._check_mel(mel, min_frames=0)
        if self._multi:
            speaker_id = self._check_speaker(speaker_id, batch)
        state, pushed, final = self._check_stream_inputs(state, pushed, final, batch)
        seed = tf.stack([self._check_seed(seed), tf.constant(0, tf.int64)])
        model = self.model
        half = model.upsampler.look_ahead_frames
        hop = self._hop
        gc = model.global_conditioning(speaker_id) if self._multi else None

        def push(context, flows, normalized, before):
            n = tf.cast(tf.shape(normalized)[1], tf.int64)
            start = synthesis.emitted_frames(before, half) * hop
            stop = synthesis.emitted_frames(before + n, half) * hop
            noise = synthesis.logistic_noise_range(seed, batch, start, stop)
            return synthesis.stream_step(model, context, normalized, before, noise, gc, flows)

        context, flows = synthesis.unpack_state(model, state)
        audio, context, flows = push(context, flows, model.feature_normalizer(mel), pushed)
        after = pushed + tf.cast(tf.shape(mel)[1], tf.int64)

        def flush():
            pad = tf.zeros(tf.stack([batch, half, self._dim]), context.dtype)
            tail, _, _ = push(context, flows, pad, after)
            fresh = synthesis.pack_state(*synthesis.initial_stream_state(model, batch))
            return tf.concat([audio, tail], axis=1), fresh, tf.constant(0, tf.int64)

        def keep():
            return audio, synthesis.pack_state(context, flows), after

        audio, state, pushed = tf.cond(final, flush, keep)
        audio = tf.clip_by_value(audio, -1.0, 1.0)
        return {"audio": audio, "audio_pcm16": float_to_pcm16(audio), "state": state,
                "pushed": pushed}

    # ------------------------------------------------------------------ tf.functions
    def _build_functions(self):
        mel_spec = tf.TensorSpec(None, tf.float32, name="mel")
        audio_spec = tf.TensorSpec(None, tf.float32, name="audio")
        spk_spec = tf.TensorSpec(None, tf.int32, name="speaker_id")
        seed_spec = tf.TensorSpec(None, tf.int64, name="seed")
        default_seed = tf.constant(self._default_seed, tf.int64)

        # Keyword-argument functions: the SavedModel signatures (TF Serving). `seed` has a
        # SignatureDef default (PlaceholderWithDefault) so servers may omit it.
        if self._multi:
            def serve(mel, speaker_id, seed=default_seed):
                return self._serve(mel, speaker_id, seed)

            def vocode(audio, speaker_id, seed=default_seed):
                return self._serve_waveform(audio, speaker_id, seed)

            serve_specs = [mel_spec, spk_spec, seed_spec]
            vocode_specs = [audio_spec, spk_spec, seed_spec]
        else:
            def serve(mel, seed=default_seed):
                return self._serve(mel, None, seed)

            def vocode(audio, seed=default_seed):
                return self._serve_waveform(audio, None, seed)

            serve_specs = [mel_spec, seed_spec]
            vocode_specs = [audio_spec, seed_spec]

        def mel_fn(audio):
            return self._serve_mel(audio)

        state_spec = tf.TensorSpec(None, tf.float32, name="state")
        pushed_spec = tf.TensorSpec(None, tf.int64, name="pushed")
        final_spec = tf.TensorSpec(None, tf.bool, name="final")
        no_frames = tf.constant(0, tf.int64)
        not_final = tf.constant(False)
        if self._multi:
            def stream(mel, state, speaker_id, pushed=no_frames, seed=default_seed,
                       final=not_final):
                return self._stream(mel, state, pushed, seed, final, speaker_id)

            stream_specs = [mel_spec, state_spec, spk_spec, pushed_spec, seed_spec, final_spec]
        else:
            def stream(mel, state, pushed=no_frames, seed=default_seed, final=not_final):
                return self._stream(mel, state, pushed, seed, final)

            stream_specs = [mel_spec, state_spec, pushed_spec, seed_spec, final_spec]

        self._signature_fns = {
            SERVING_DEFAULT: tf.function(serve, input_signature=serve_specs),
        }
        if self._uses_mel:
            self._signature_fns[VOCODE_WAVEFORM] = tf.function(vocode,
                                                               input_signature=vocode_specs)
            self._signature_fns[MEL] = tf.function(mel_fn, input_signature=[audio_spec])
        if self._role == "student":
            self._signature_fns[STREAM_STEP] = tf.function(stream, input_signature=stream_specs)
            # Keyword arguments on the loaded object too (`loaded.stream_step(mel=, state=)`).
            self.stream_step = self._signature_fns[STREAM_STEP]

        # Dict-input functions: attributes of the loaded object with the signatures' names
        # (one `inputs` dict, Keras style: what `TFSMLayer(path, call_endpoint=NAME)` calls).
        # They call the signature functions (one graph each, not re-traced) and are traced
        # for each optional-key combination, so `seed` may be left out.
        def dict_fn(name, main_key, main_spec, optional_seed):
            signature_fn = self._signature_fns[name]

            def call(inputs):
                return signature_fn(**inputs)

            f = tf.function(call)
            variants = [{main_key: main_spec}]
            if self._multi and optional_seed:
                variants = [{main_key: main_spec, "speaker_id": spk_spec}]
            if optional_seed:
                variants += [{**variants[0], "seed": seed_spec}]
            for spec in variants:
                f.get_concrete_function(spec)
            return f

        self.serving_default = dict_fn(SERVING_DEFAULT, "mel", mel_spec, True)
        if self._uses_mel:
            self.vocode_waveform = dict_fn(VOCODE_WAVEFORM, "audio", audio_spec, True)
            self.mel = dict_fn(MEL, "audio", audio_spec, False)

    @property
    def signatures(self):
        """`{name: tf.function}` to pass to `tf.saved_model.save(..., signatures=)`."""
        return dict(self._signature_fns)

    # ------------------------------------------------------------------ saving
    def save(self, path):
        """Writes the SavedModel (with the metadata assets) to `path` (a new folder)."""
        tmp = tempfile.mkdtemp(prefix="pwavenet_export_assets_")
        try:
            with open(os.path.join(tmp, CONFIG_ASSET), "w") as f:
                json.dump(self.metadata(), f, indent=2)
                f.write("\n")
            with open(os.path.join(tmp, STATS_ASSET), "w") as f:
                json.dump(self._stats, f, indent=2)
                f.write("\n")
            self.config_file = tf.saved_model.Asset(os.path.join(tmp, CONFIG_ASSET))
            self.feature_stats_file = tf.saved_model.Asset(os.path.join(tmp, STATS_ASSET))
            tf.saved_model.save(self, path, signatures=self.signatures)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path


def save_export(model, config, base, name=None, version=None, max_seconds=DEFAULT_MAX_SECONDS,
                default_seed=DEFAULT_SEED, chunk_seconds=DEFAULT_CHUNK_SECONDS):
    """Exports `model` to TF Serving's layout `base/name/version`; returns `(path, version)`.

    `name` defaults to `pwavenet_<role>`, `version` to the next free integer. An existing
    version is never overwritten (`ExportError`); the export is written to a temporary
    folder and renamed into place when complete.
    """
    from pwavenet_tf.export.versioning import publish_version, version_dir

    module = ExportModule(model, config, max_seconds=max_seconds, default_seed=default_seed,
                          chunk_seconds=chunk_seconds)
    name = name or f"pwavenet_{module.role}"
    path, version = version_dir(base, name, version)
    publish_version(path, module.save)
    return path, version
