"""Autoregressive generation from the WaveNet teacher: cached queues and a naive reference."""

import sys

import tensorflow as tf
from keras import ops

from pwavenet_tf.models.feature_checks import validate_features

CACHED = "cached"
NAIVE = "naive"
METHODS = (CACHED, NAIVE)


@tf.function
def draw_uniforms(batch, length, seed):
    """Uniform noise `[length, batch, 2]` in (0, 1) for `length` sampling steps."""
    seed = tf.cast(seed, tf.int64)
    return tf.random.stateless_uniform([length, batch, 2], seed=seed, minval=1e-5,
                                       maxval=1.0 - 1e-5, alg="philox")


class TeacherGenerator:
    """Samples audio from a `WaveNetTeacher`, one sample at a time, inside `tf.while_loop`.

    - `method="cached"` ("fast WaveNet"): every dilated convolution keeps a queue of its
      last (k-1)*d inputs, so the work per sample is O(layers).
    - `method="naive"`: recomputes the teacher-forced pass over the last receptive field of
      generated samples at every step, O(receptive field) per sample. The reference.

    Noise is drawn up front from a stateless seed, so both methods consume the same
    uniforms and produce the same audio for the same seed (up to float rounding).
    Batched over utterances; `jit_compile=True` compiles the cached loop with XLA.

    Args:
        teacher: a built `WaveNetTeacher`.
        jit_compile: compile the cached generation loop with XLA.
        progress_every: print a progress line every this many samples (0: never).
    """

    def __init__(self, teacher, jit_compile=False, progress_every=0):
        self.teacher = teacher
        self.jit_compile = jit_compile
        # Progress lines from inside the graph loop (not available under XLA).
        self.progress_every = 0 if jit_compile else int(progress_every)
        self._cached_fn = tf.function(self._generate_cached, jit_compile=jit_compile,
                                      reduce_retracing=True)
        self._naive_fn = tf.function(self._generate_naive, reduce_retracing=True)

    def generate(self, features, speaker_id=None, seed=(0, 0), method=CACHED):
        """Generates `[batch, frames * hop]` float32 audio in [-1, 1] from `features`."""
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
        features = validate_features(features, self.teacher.conditioning_dim)
        if self.teacher.multi_speaker:
            if speaker_id is None:
                raise ValueError("This teacher is multi-speaker: pass `speaker_id`.")
            speaker_id = tf.convert_to_tensor(speaker_id, tf.int32)
        else:
            speaker_id = tf.zeros([tf.shape(features)[0]], tf.int32)
        # Drawn outside the (possibly XLA-compiled) loop: XLA's stateless RNG gives other
        # numbers for the same seed, and the noise must not depend on the compiler.
        uniforms = draw_uniforms(tf.shape(features)[0],
                                 tf.shape(features)[1] * self.teacher.hop_length, seed)
        fn = self._cached_fn if method == CACHED else self._naive_fn
        return fn(features, speaker_id, uniforms)

    def _setup(self, features, speaker_id):
        teacher = self.teacher
        conditioning = teacher.upsample_conditioning(features)
        global_conditioning = None
        if teacher.multi_speaker:
            global_conditioning = teacher.global_conditioning(speaker_id)
        batch = tf.shape(conditioning)[0]
        length = tf.shape(conditioning)[1]
        return conditioning, global_conditioning, batch, length

    def _sample(self, params, u):
        dist = self.teacher.distribution(params)
        if self.teacher.output_distribution == "mixture_of_logistics":
            return dist.sample(u[:, 0], u[:, 1])
        return dist.sample(u[:, 0])

    def _report(self, t, length):
        if self.progress_every:
            tf.cond(
                tf.equal(t % self.progress_every, 0),
                lambda: tf.print("generated", t, "/", length, "samples",
                                 output_stream=sys.stderr),
                lambda: tf.no_op(),
            )

    def _generate_cached(self, features, speaker_id, uniforms):
        teacher = self.teacher
        conditioning, global_cond, batch, length = self._setup(features, speaker_id)
        cond_t_major = tf.transpose(conditioning, [1, 0, 2])
        state = teacher.initial_state(batch, conditioning.dtype)
        out = tf.TensorArray(tf.float32, size=length)

        def body(t, x_prev, state, out):
            self._report(t, length)
            params, state = teacher.step(x_prev, cond_t_major[t], global_cond, state)
            x = ops.cast(self._sample(params, uniforms[t]), tf.float32)
            return t + 1, x, state, out.write(t, x)

        _, _, _, out = tf.while_loop(
            lambda t, *_: t < length, body, (0, tf.zeros([batch], tf.float32), state, out)
        )
        return tf.transpose(out.stack(), [1, 0])

    def _generate_naive(self, features, speaker_id, uniforms):
        teacher = self.teacher
        conditioning, global_cond, batch, length = self._setup(features, speaker_id)
        rf = teacher.receptive_field
        audio = tf.zeros([batch, length], tf.float32)

        def body(t, audio):
            self._report(t, length)
            start = tf.maximum(0, t - rf)
            # Positions start..t; the model shifts its input, so x_t itself is never seen.
            window = audio[:, start:t + 1]
            params = teacher.params_from_conditioning(
                window, conditioning[:, start:t + 1], global_cond
            )[:, -1]
            x = ops.cast(self._sample(params, uniforms[t]), tf.float32)
            indices = tf.stack([tf.range(batch), tf.fill([batch], t)], axis=1)
            return t + 1, tf.tensor_scatter_nd_update(audio, indices, x)

        _, audio = tf.while_loop(lambda t, _: t < length, body, (0, audio))
        return audio

    def step_params(self, audio, features, speaker_id=None):
        """Teacher-forces `audio` through the cached `step` path; returns `[B, T, P]` params.

        For tests and diagnostics: must equal `teacher({"audio": audio, ...})`.
        """
        teacher = self.teacher
        audio = tf.convert_to_tensor(audio, tf.float32)
        conditioning = teacher.upsample_conditioning(tf.convert_to_tensor(features, tf.float32))
        global_cond = None
        if teacher.multi_speaker:
            global_cond = teacher.global_conditioning(tf.convert_to_tensor(speaker_id, tf.int32))
        batch, length = audio.shape[0], audio.shape[1]
        state = teacher.initial_state(batch)
        x_prev = tf.zeros([batch])
        outs = []
        for t in range(length):
            params, state = teacher.step(x_prev, conditioning[:, t], global_cond, state)
            outs.append(params)
            x_prev = audio[:, t]
        return tf.stack(outs, axis=1)
