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
      last (k-1)*d inputs, so the work per sample is O(layers). The queues are ring
      buffers written in place (see `WaveNetTeacher.cached_step`), the conditioning
      projections of all blocks are computed before the sample loop, one matmul per chunk
      of `chunk_samples` samples, and each block's residual and skip projections are one
      matmul, so a step's cost hardly grows with the batch until the matmuls dominate.
    - `method="naive"`: recomputes the teacher-forced pass over the last receptive field of
      generated samples at every step, O(receptive field) per sample. The reference.

    Noise is drawn up front from a stateless seed, so both methods consume the same
    uniforms and produce the same audio for the same seed (up to float rounding).
    Batched over utterances; `jit_compile=True` compiles the cached loop with XLA.

    Args:
        teacher: a built `WaveNetTeacher`.
        jit_compile: compile the cached generation loop with XLA.
        progress_every: print a progress line every this many samples (0: never).
        chunk_samples: samples whose conditioning projections are computed at once
            (memory: chunk * batch * layers * gate_channels values); None: as many as fit
            in about 32 MiB.
    """

    CHUNK_BYTES = 32 * 2**20

    def __init__(self, teacher, jit_compile=False, progress_every=0, chunk_samples=None):
        if chunk_samples is not None and (not isinstance(chunk_samples, int)
                                          or chunk_samples < 1):
            raise ValueError("`chunk_samples` must be a positive integer or None. "
                             f"Received: chunk_samples={chunk_samples!r}")
        self.teacher = teacher
        self.jit_compile = jit_compile
        self.chunk_samples = chunk_samples
        # Progress lines from inside the graph loop (not available under XLA).
        self.progress_every = 0 if jit_compile else int(progress_every)
        self._cached_fn = tf.function(self._generate_cached, jit_compile=jit_compile,
                                      reduce_retracing=True)
        self._naive_fn = tf.function(self._generate_naive, reduce_retracing=True)
        self._forced_fn = tf.function(self._forced_params, jit_compile=jit_compile,
                                      reduce_retracing=True)

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
        conditioning, global_cond, _, _ = self._setup(features, speaker_id)
        return tf.transpose(self._cached_loop(conditioning, global_cond, uniforms=uniforms))

    def _forced_params(self, audio, features, speaker_id):
        conditioning, global_cond, _, _ = self._setup(features, speaker_id)
        params = self._cached_loop(conditioning, global_cond, audio=audio)
        return tf.transpose(params, [1, 0, 2])

    def _chunk_length(self, conditioning):
        """Samples per conditioning-projection chunk (a Python int: XLA needs it static)."""
        teacher = self.teacher
        length = conditioning.shape[1]
        if self.chunk_samples is not None:
            n = self.chunk_samples
        else:
            batch = conditioning.shape[0] or 16
            itemsize = tf.as_dtype(teacher.blocks[0].compute_dtype).size
            per_sample = batch * len(teacher.blocks) * teacher.gate_channels * itemsize
            n = max(64, self.CHUNK_BYTES // per_sample)
        return n if length is None else max(1, min(n, length))

    # The ring of every block's queue rows (see `WaveNetTeacher.cached_ring_layout`). Under
    # XLA a tensor, whose scatter XLA does in place. In graph mode a TensorArray, whose
    # scatter replaces element handles (at worst it copies the list of handles, never the
    # values): TensorFlow's executor copies the whole tensor on every
    # `tensor_scatter_nd_update`/`dynamic_update_slice` of a loop variable (measured: a
    # [4096, 16, 64] ring costs ~1 ms per step that way, ~10 us as a TensorArray).

    def _ring_init(self, rows, batch, width, dtype):
        zeros = tf.zeros([rows, batch, width], dtype)
        if self.jit_compile:
            return zeros
        ring = tf.TensorArray(dtype, size=rows, clear_after_read=False,
                              element_shape=tf.TensorShape([None, width]))
        return ring.unstack(zeros)

    def _ring_read(self, ring, index):
        return tf.gather(ring, index) if self.jit_compile else ring.gather(index)

    def _ring_write(self, ring, index, values):
        if self.jit_compile:
            return tf.tensor_scatter_nd_update(ring, index[:, None], values)
        return ring.scatter(index, values)

    def _cached_loop(self, conditioning, global_cond, uniforms=None, audio=None):
        """The cached generation loop: samples `[T, B]` drawn with `uniforms` `[T, B, 2]`,
        or, with `audio` `[B, T]` (teacher forcing), the parameters `[T, B, P]`."""
        teacher = self.teacher
        plan = teacher.cached_plan(global_cond)
        dtype = plan["dtype"]
        batch = tf.shape(conditioning)[0]
        length = tf.shape(conditioning)[1]
        n = self._chunk_length(conditioning)
        num_chunks = (length + n - 1) // n
        # Padded to whole chunks so that every chunk has the static length n.
        padded = tf.pad(conditioning, [[0, 0], [0, num_chunks * n - length], [0, 0]])

        layout = teacher.cached_ring_layout()
        if layout is None:
            ring = tf.zeros([0], dtype)  # no queues (filter_size 1)
        else:
            offsets, dilations, width = layout
            offsets = tf.constant(offsets, tf.int32)
            dilations = tf.constant(dilations, tf.int32)
            ring = self._ring_init(int(sum(teacher.dilations)), batch, width, dtype)
        forced = audio is not None
        if forced:
            audio_t_major = tf.transpose(tf.convert_to_tensor(audio, tf.float32))
            out = tf.TensorArray(tf.float32, size=length,
                                 element_shape=tf.TensorShape([None, teacher.num_params]))
        else:
            out = tf.TensorArray(tf.float32, size=length)

        def chunk_body(c, x_prev, ring, out):
            start = c * n
            gate_chunk = teacher.project_conditioning(
                tf.gather(padded, start + tf.range(n), axis=1), plan)  # [n, blocks, B, gate]

            def step_body(s, x_prev, ring, out):
                t = start + s
                self._report(t, length)
                rows = None
                if layout is not None:
                    index = offsets + tf.math.floormod(t, dilations)
                    rows = self._ring_read(ring, index)
                params, new_rows = teacher.cached_step(x_prev, rows, gate_chunk[s], plan)
                if layout is not None:
                    ring = self._ring_write(ring, index, new_rows)
                if forced:
                    return s + 1, audio_t_major[t], ring, out.write(t, params)
                x = ops.cast(self._sample(params, uniforms[t]), tf.float32)
                return s + 1, x, ring, out.write(t, x)

            _, x_prev, ring, out = tf.while_loop(
                lambda s, *_: s < tf.minimum(n, length - start), step_body,
                (0, x_prev, ring, out))
            return c + 1, x_prev, ring, out

        _, _, _, out = tf.while_loop(
            lambda c, *_: c < num_chunks, chunk_body,
            (0, tf.zeros([batch], tf.float32), ring, out))
        return out.stack()

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
        """Teacher-forces `audio` through the cached generation loop; returns `[B, T, P]`
        params (with this generator's `jit_compile` and `chunk_samples`).

        For tests and diagnostics: must equal `teacher({"audio": audio, ...})`.
        """
        teacher = self.teacher
        features = validate_features(features, teacher.conditioning_dim)
        if teacher.multi_speaker:
            speaker_id = tf.convert_to_tensor(speaker_id, tf.int32)
        else:
            speaker_id = tf.zeros([tf.shape(features)[0]], tf.int32)
        return self._forced_fn(tf.convert_to_tensor(audio, tf.float32), features, speaker_id)
