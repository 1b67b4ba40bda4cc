"""Streaming generation from the IAF student: frames in, audio out, in constant memory."""

import weakref

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import gen_stateless_random_ops_v2

from pwavenet_tf.models.student_generator import EPS

# Rows of a batch whose total length is not known are drawn as rows of a virtual
# [batch, 2**40] noise tensor (2**40 samples: 1.6 years at 22 kHz).
_UNKNOWN_LENGTH_STRIDE = 2 ** 40
_PHILOX = 1  # tf.random.Algorithm.PHILOX
# The compiled chunk function of each student, shared by its vocoders (one trace per
# student and option, not per utterance).
_CHUNK_FUNCTIONS = weakref.WeakKeyDictionary()


@tf.function(reduce_retracing=True)
def _draw_flat(key, counter, count, skip):
    """Elements `skip .. count - 1` of the flat philox stream of `(key, counter)`, as
    logistic noise, exactly as `draw_logistic_noise` transforms its uniforms."""
    u = gen_stateless_random_ops_v2.stateless_random_uniform_v2(
        tf.reshape(count, [1]), key=key, counter=counter, dtype=tf.float32, alg=_PHILOX)
    minval = tf.constant(EPS, tf.float32)
    maxval = tf.constant(1.0 - EPS, tf.float32)
    u = u * (maxval - minval) + minval
    u = u[skip:]
    return tf.math.log(u) - tf.math.log1p(-u)


class LogisticNoise:
    """Logistic(0, 1) noise for any range of samples, drawn by position.

    `noise(batch, start, stop)` returns `[batch, stop - start]` float32: columns
    `start .. stop - 1` of `draw_logistic_noise(batch, length, seed)` (the noise of the
    one-pass generator, `StudentGenerator`, and of the exported SavedModel), for any
    `length >= stop`, without drawing the samples before `start`. Philox is a counter
    generator: every four values come from one counter, so the range is drawn from the
    counter of its first sample on. Any split of an utterance into ranges therefore gets
    the same noise as the whole, which makes streaming exact.

    With `batch > 1`, row b of `draw_logistic_noise` starts at flat element `b * length`:
    pass the utterance's `length` to reproduce it; without it, row b starts at
    `b * 2**40` (still independent of how the rows are split into ranges).

    Args:
        seed: an int `s` (the same as `(s, 0)`) or a pair of ints, the stateless seed.
        length: the utterance's total samples, needed only to match
            `draw_logistic_noise` at `batch > 1`.

    Example:

    ```python
    noise = LogisticNoise(seed=7)
    whole = draw_logistic_noise(1, 1000, (7, 0))
    np.testing.assert_allclose(noise(1, 200, 300), whole[:, 200:300], atol=1e-6)
    ```
    """

    def __init__(self, seed=0, length=None):
        if isinstance(seed, (int, np.integer)):
            seed = (int(seed), 0)
        seed = tf.convert_to_tensor(seed, tf.int64)
        if seed.shape != (2,):
            raise ValueError(f"`seed` must be an int or a pair of ints. Received: {seed}")
        key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
        self._key = key
        self._counter = [int(c) for c in counter.numpy().astype(np.uint64)]
        self.length = None if length is None else int(length)

    def __call__(self, batch, start, stop):
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop:
            raise ValueError(f"Need 0 <= start <= stop. Received: start={start}, stop={stop}")
        stride = self.length if self.length is not None else _UNKNOWN_LENGTH_STRIDE
        rows = []
        for b in range(int(batch)):
            first = b * stride + start
            aligned = first // 4 * 4
            low = self._counter[0] + aligned // 4
            high = (self._counter[1] + (low >> 64)) & (2 ** 64 - 1)
            counter = tf.constant(np.array([low & (2 ** 64 - 1), high], np.uint64))
            rows.append(_draw_flat(self._key, counter,
                                   tf.constant(first - aligned + stop - start, tf.int32),
                                   tf.constant(first - aligned, tf.int32)))
        return tf.stack(rows) if rows else tf.zeros([0, stop - start], tf.float32)


class StreamingVocoder:
    """Streams an `IAFStudent`: feature frames in, audio out, chunk by chunk.

    Every flow of the student is causal, so it needs of the past only what its
    convolutions see: each flow keeps the previous input sample (its one-sample shift)
    and, per residual block, a queue of the last `(k - 1) * d` inputs of its dilated
    convolution. The conditioning upsampler's pre-convolution ("same" padding, kernel
    `2 * half + 1`) looks `half` frames ahead, so the vocoder holds back the last `half`
    frames of each push and emits their audio on the next `push` or on `flush` (the
    first audio lags by `half` frames: one frame for the default kernel of 3). The
    state is a fixed set of tensors whose sizes depend on the model, not on the input's
    length, and each chunk is computed once (no overlapping recomputation).

    Exactness: the noise is drawn by sample position from `LogisticNoise(seed)`, the
    same noise as the one-pass generator (`StudentGenerator.generate`) and the exported
    SavedModel for the same seed, so the audio of any chunking, concatenated, equals the
    one-pass audio up to float rounding (tested to 1e-5).

    Args:
        student: a built `IAFStudent`.
        seed: the noise seed: an int `s` (the same as `(s, 0)`, what `pwavenet vocode
            --seed s` uses) or a pair of ints. Ignored when `noise` is given.
        speaker_id: int32 `[batch]` (or an int for batch 1), required iff the student is
            multi-speaker; ignored otherwise.
        noise: optional noise source, a callable `noise(batch, start, stop)` returning
            `[batch, stop - start]` float32 for samples `start .. stop - 1` (for example
            a `LogisticNoise` built with the utterance's length, to match a batched
            one-pass draw).
        clip: clip the audio to [-1, 1] as the one-pass generator does.
        jit_compile: compile each chunk's computation with XLA (the noise is drawn
            outside it).

    Example:

    ```python
    student = pwavenet_tf.presets.from_preset("ljspeech_mini").student()
    vocoder = StreamingVocoder(student, seed=0)
    pieces = [vocoder.push(mel[i:i + 20]) for i in range(0, len(mel), 20)]
    pieces.append(vocoder.flush())  # the held-back last frame(s)
    audio = np.concatenate(pieces)  # [len(mel) * hop], float32 in [-1, 1]
    ```
    """

    def __init__(self, student, seed=0, speaker_id=None, noise=None, clip=True,
                 jit_compile=False):
        self.student = student
        self.clip = bool(clip)
        self._noise = noise if noise is not None else LogisticNoise(seed)
        self._speaker_id = None
        if student.multi_speaker:
            if speaker_id is None:
                raise ValueError("This student is multi-speaker: pass `speaker_id`.")
            sid = tf.reshape(tf.convert_to_tensor(speaker_id, tf.int32), [-1])
            if not np.all((sid.numpy() >= 0) & (sid.numpy() < student.num_speakers)):
                raise ValueError(f"`speaker_id` must lie in [0, {student.num_speakers}). "
                                 f"Received: speaker_id={sid.numpy().tolist()}")
            self._speaker_id = sid
        functions = _CHUNK_FUNCTIONS.setdefault(student, {})
        key = (self.clip, bool(jit_compile))
        if key not in functions:
            functions[key] = tf.function(_chunk_function(student, self.clip),
                                         jit_compile=bool(jit_compile), reduce_retracing=True)
        self._fn = functions[key]
        self.reset()

    # --- Properties ---

    @property
    def hop_length(self):
        return self.student.hop_length

    @property
    def look_ahead_frames(self):
        """Frames held back per push: the audio of a frame comes out once the `half`
        frames after it have arrived (or at `flush`)."""
        return self.student.upsampler.look_ahead_frames

    @property
    def samples_emitted(self):
        """Samples of audio returned so far for the current utterance."""
        return self._position

    @property
    def state(self):
        """The tensors carried between chunks: the frame context of the upsampler, then
        each flow's previous sample and queues. Empty before the first push. Their
        shapes depend on the model only, not on how much has been pushed."""
        if self._context is None:
            return []
        return [self._context] + [s for flow_state in self._flow_states for s in flow_state]

    @property
    def state_size(self):
        """Number of values in `state`."""
        return int(sum(np.prod(s.shape) for s in self.state))

    # --- Streaming ---

    def reset(self):
        """Starts a new utterance (the noise starts again at sample 0)."""
        self._batch = None
        self._context = None
        self._flow_states = None
        self._gc = None
        self._position = 0
        self._unbatched = False

    def _start(self, batch):
        student = self.student
        if self._speaker_id is not None and int(self._speaker_id.shape[0]) != batch:
            raise ValueError(
                f"`speaker_id` must be [batch] = [{batch}]. "
                f"Received: speaker_id.shape={tuple(self._speaker_id.shape)}"
            )
        self._batch = batch
        self._context = student.upsampler.stream_initial_state(
            batch, student.conditioning_dim, student.upsampler.compute_dtype)
        self._flow_states = [flow.stream_initial_state(batch, flow.compute_dtype)
                             for flow in student.flows]
        if self._speaker_id is not None:
            self._gc = student.global_conditioning(self._speaker_id)

    def _check_frames(self, frames):
        dim = self.student.conditioning_dim
        arr = np.asarray(frames)
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"`frames` must hold numbers. Received: dtype={arr.dtype}")
        if arr.ndim not in (2, 3) or arr.shape[-1] != dim:
            raise ValueError(
                f"`frames` must be [frames, {dim}] or [batch, frames, {dim}] for this "
                f"student (conditioning_dim={dim}). Received: frames.shape={arr.shape}"
            )
        unbatched = arr.ndim == 2
        if unbatched:
            arr = arr[None]
        if not np.all(np.isfinite(arr)):
            raise ValueError("`frames` contains NaN or Inf.")
        if self._batch is not None:
            if unbatched != self._unbatched:
                raise ValueError("Push frames of the same rank ([frames, dim] or "
                                 "[batch, frames, dim]) throughout a stream.")
            if arr.shape[0] != self._batch:
                raise ValueError(
                    f"This stream has batch {self._batch}; every push must too. "
                    f"Received: frames.shape={np.asarray(frames).shape}"
                )
        return arr.astype("float32"), unbatched

    def _run(self, frames):
        """Conditions the ready frames of context + `frames` and keeps the rest."""
        upsampler = self.student.upsampler
        buf = tf.concat([self._context, tf.cast(frames, self._context.dtype)], axis=1)
        n = upsampler.stream_ready_frames(int(buf.shape[1]))
        keep = int(buf.shape[1]) - 2 * upsampler.look_ahead_frames
        if n:
            samples = n * self.hop_length
            noise = self._noise(self._batch, self._position, self._position + samples)
            audio, self._flow_states = self._fn(buf, noise, self._gc, self._flow_states)
            self._position += samples
            audio = audio.numpy()
        else:
            audio = np.zeros((self._batch, 0), "float32")
        self._context = buf[:, max(0, keep):]
        return audio[0] if self._unbatched else audio

    def push(self, frames):
        """Vocodes the next frames of the utterance.

        Args:
            frames: raw features (as the student takes them) `[frames, dim]`, or
                `[batch, frames, dim]` with the same batch throughout the stream; any
                number of frames, zero included.

        Returns:
            float32 audio `[samples]` (or `[batch, samples]`) for every frame whose
            look-ahead has arrived: `hop_length` samples per frame, the last
            `look_ahead_frames` frames pushed so far excepted (they come with the next
            push or `flush`).
        """
        arr, unbatched = self._check_frames(frames)
        if self._batch is None:
            self._unbatched = unbatched
            self._start(arr.shape[0])
        return self._run(self.student.feature_normalizer(tf.constant(arr)))

    def flush(self):
        """Ends the utterance: vocodes the held-back frames (their look-ahead is the
        zero padding of the one-pass upsampler) and `reset`s the stream.

        Returns:
            float32 audio `[samples]` (or `[batch, samples]`) of the held-back frames;
            empty if nothing was pushed.
        """
        if self._batch is None:
            return np.zeros((0,), "float32")
        half = self.look_ahead_frames
        pending = int(self._context.shape[1]) - half
        if pending > 0:
            pad = tf.zeros((self._batch, half, self.student.conditioning_dim),
                           self._context.dtype)
            audio = self._run(pad)
        else:
            audio = np.zeros((self._batch, 0), "float32")
            audio = audio[0] if self._unbatched else audio
        self.reset()
        return audio


def _chunk_function(student, clip):
    """The computation of one chunk: audio of the middle frames of `frames` (context
    included) on their noise, and the flows' new states."""

    student_ref = weakref.ref(student)  # the cache must not keep the student alive
    del student

    def chunk(frames, noise, global_conditioning, flow_states):
        student = student_ref()
        conditioning = student.upsampler.stream(frames)
        x = noise
        new_states = []
        for flow, state in zip(student.flows, flow_states):
            mu, log_s, state = flow.stream(x, conditioning, global_conditioning, state)
            x = x * tf.exp(log_s) + mu
            new_states.append(state)
        audio = tf.cast(x, tf.float32)
        if clip:
            audio = tf.clip_by_value(audio, -1.0, 1.0)
        return audio, new_states

    return chunk
