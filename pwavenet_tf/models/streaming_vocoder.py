"""Streaming generation from the IAF student: frames in, audio out, in constant memory."""

import weakref

import numpy as np
import tensorflow as tf

from pwavenet_tf.models.student_synthesis import (
    UNKNOWN_LENGTH_STRIDE,
    emitted_frames,
    initial_stream_state,
    logistic_noise_range,
    stream_step,
    synthesize_window,
)

# The compiled step function of each student, shared by its vocoders (one trace per
# student and option, not per utterance).
_STEP_FUNCTIONS = weakref.WeakKeyDictionary()
_noise_range = tf.function(logistic_noise_range, reduce_retracing=True)


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
        self._seed = seed
        self.length = None if length is None else int(length)

    def __call__(self, batch, start, stop):
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop:
            raise ValueError(f"Need 0 <= start <= stop. Received: start={start}, stop={stop}")
        stride = self.length if self.length is not None else UNKNOWN_LENGTH_STRIDE
        if not batch or stop == start:
            return tf.zeros([int(batch), stop - start], tf.float32)
        return _noise_range(self._seed, tf.constant(int(batch), tf.int64),
                            tf.constant(start, tf.int64), tf.constant(stop, tf.int64),
                            tf.constant(stride, tf.int64))


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

    The push itself is `student_synthesis.stream_step`, the step the SavedModel's
    `stream_step` signature runs, so a stream through TF Serving gives the same audio.

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
        functions = _STEP_FUNCTIONS.setdefault(student, {})
        key = (self.clip, bool(jit_compile))
        if key not in functions:
            functions[key] = _step_function(student, self.clip, bool(jit_compile))
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
        self._pushed = 0  # frames pushed (flush excepted)
        self._position = 0  # samples emitted
        self._unbatched = False

    def _start(self, batch):
        student = self.student
        if self._speaker_id is not None and int(self._speaker_id.shape[0]) != batch:
            raise ValueError(
                f"`speaker_id` must be [batch] = [{batch}]. "
                f"Received: speaker_id.shape={tuple(self._speaker_id.shape)}"
            )
        self._batch = batch
        self._context, self._flow_states = initial_stream_state(student, batch)
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

    def _run(self, normalized, final=False):
        """Pushes normalized frames through `stream_step`; returns the ready audio."""
        half = self.look_ahead_frames
        n = int(normalized.shape[1])
        ready = int(emitted_frames(self._pushed + n, half) - emitted_frames(self._pushed, half))
        samples = ready * self.hop_length
        noise = self._noise(self._batch, self._position, self._position + samples)
        audio, self._context, self._flow_states = self._fn(
            self._context, normalized, tf.constant(self._pushed, tf.int64), noise, self._gc,
            self._flow_states)
        if not final:
            self._pushed += n
        self._position += samples
        audio = audio.numpy()
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
        pad = tf.zeros((self._batch, self.look_ahead_frames, self.student.conditioning_dim),
                       self._context.dtype)
        audio = self._run(pad, final=True)
        self.reset()
        return audio


def _step_function(student, clip, jit_compile):
    """`stream_step` of one student as a `tf.function` (the student held weakly: the
    cache must not keep it alive); with `jit_compile`, its window computation is
    compiled with XLA (one compilation per chunk size)."""

    student_ref = weakref.ref(student)
    del student
    window_fn = None
    if jit_compile:
        def window(frames, noise, global_conditioning, flow_states):
            return synthesize_window(student_ref(), frames, noise, global_conditioning,
                                     flow_states, clip)

        window_fn = tf.function(window, jit_compile=True, reduce_retracing=True)

    def step(context, normalized, pushed, noise, global_conditioning, flow_states):
        return stream_step(student_ref(), context, normalized, pushed, noise,
                           global_conditioning, flow_states, clip, window_fn=window_fn)

    return tf.function(step, reduce_retracing=True)
