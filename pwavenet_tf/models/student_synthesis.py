"""The student's one generation path: noise, features -> audio, whole or chunk by chunk.

Everything that turns features into audio with an `IAFStudent` goes through these
functions: `StudentGenerator` (one pass or chunked), `StreamingVocoder` (Python
streaming), the SavedModel's signatures (`serving_default` and `vocode_waveform` as an
in-graph loop over chunks, `stream_step` as a stateful streaming step) and the TFLite
streaming step. They are written with TensorFlow ops that run eagerly, in a
`tf.function` and in a SavedModel alike.

- Noise: `draw_logistic_noise` (a whole `[batch, length]` draw) and
  `logistic_noise_range` (any range of samples of the same stream, drawn by position),
  both from one philox stateless seed.
- `synthesize`: raw features + noise -> audio, in one parallel pass or in chunks of
  `chunk_frames` frames inside the graph (a `tf.while_loop` carrying the flows' queues:
  memory bounded by the chunk, the same audio).
- `synthesize_window`: the audio of the middle frames of a normalized frame window
  (context included) given the flows' states; the step every chunked path runs.
- `stream_step`: one push of a stateful stream with a fixed-size state (the frame context
  and the flows' queues), as `StreamingVocoder` and the SavedModel's `stream_step` run it.
"""

import tensorflow as tf
from tensorflow.python.ops import gen_stateless_random_ops_v2

# Uniforms are drawn in [EPS, 1 - EPS] so that the logistic noise stays finite (|z| < 14).
EPS = 1e-6
# Rows of a stream whose total length is not known are drawn as rows of a virtual
# [batch, 2**40] noise tensor (2**40 samples: 1.6 years at 22 kHz).
UNKNOWN_LENGTH_STRIDE = 2 ** 40
_PHILOX = 1  # tf.random.Algorithm.PHILOX
_INT64_MIN = -(2 ** 63)

__all__ = [
    "EPS",
    "UNKNOWN_LENGTH_STRIDE",
    "draw_logistic_noise",
    "emitted_frames",
    "initial_stream_state",
    "logistic_noise_range",
    "pack_state",
    "state_sizes",
    "stream_step",
    "synthesize",
    "synthesize_window",
    "unpack_state",
]


# ---------------------------------------------------------------------------- noise
def _to_logistic(u):
    u = u * tf.constant(1.0 - 2 * EPS, tf.float32) + tf.constant(EPS, tf.float32)
    return tf.math.log(u) - tf.math.log1p(-u)


@tf.function(reduce_retracing=True)
def draw_logistic_noise(batch, length, seed):
    """Logistic(0, 1) noise `[batch, length]` from a `[2]` philox stateless seed.

    Row b is elements `b * length .. (b + 1) * length - 1` of the seed's philox stream.
    Never call it inside an XLA-compiled function (XLA's stateless RNG gives other
    numbers).
    """
    seed = tf.cast(seed, tf.int64)
    u = tf.random.stateless_uniform([batch, length], seed=seed, minval=EPS, maxval=1.0 - EPS,
                                    alg="philox")
    return tf.math.log(u) - tf.math.log1p(-u)


def _add_to_counter(counter, steps):
    """The 128-bit philox counter `[2]` uint64 advanced by `steps` (int64 >= 0)."""
    low = tf.bitcast(counter[0], tf.int64)
    new_low = low + steps  # wraps modulo 2**64 like the unsigned addition
    # Unsigned comparison through the sign bit: a carry when new_low < low as uint64.
    carry = tf.cast((new_low ^ _INT64_MIN) < (low ^ _INT64_MIN), tf.int64)
    high = tf.bitcast(counter[1], tf.int64) + carry
    return tf.bitcast(tf.stack([new_low, high]), tf.uint64)


def logistic_noise_range(seed, batch, start, stop, stride=UNKNOWN_LENGTH_STRIDE):
    """Samples `start .. stop - 1` of a logistic noise stream, `[batch, stop - start]`.

    Row b is elements `b * stride + start .. b * stride + stop - 1` of the philox stream
    of `seed` (`[2]` int64), transformed as `draw_logistic_noise` transforms its
    uniforms: with `stride = length` this is `draw_logistic_noise(batch, length,
    seed)[:, start:stop]`, without drawing the samples before `start`. Philox gives four
    values per counter, so a range is drawn from the counter of its first sample on. Any
    split of an utterance into ranges therefore gets the same noise as the whole.
    Tensors or Python ints; usable in a graph.
    """
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    start = tf.cast(start, tf.int64)
    count = tf.cast(stop, tf.int64) - start
    stride = tf.cast(stride, tf.int64)

    def row(b):
        first = b * stride + start
        aligned = first // 4 * 4
        skip = first - aligned
        u = gen_stateless_random_ops_v2.stateless_random_uniform_v2(
            tf.reshape(tf.cast(skip + count, tf.int32), [1]), key=key,
            counter=_add_to_counter(counter, aligned // 4), dtype=tf.float32, alg=_PHILOX)
        return _to_logistic(u[tf.cast(skip, tf.int32):])

    rows = tf.range(tf.cast(batch, tf.int64), dtype=tf.int64)
    out = tf.map_fn(row, rows, fn_output_signature=tf.TensorSpec([None], tf.float32))
    return tf.reshape(out, tf.stack([tf.cast(batch, tf.int32), tf.cast(count, tf.int32)]))


# ---------------------------------------------------------------------------- state
def initial_stream_state(student, batch):
    """The state of a stream before its first frame: the frame context `[batch,
    2 * half, dim]` (zeros: the upsampler's padding) and each flow's previous sample and
    queues (zeros). Its size depends on the model only, not on the stream's length."""
    upsampler = student.upsampler
    context = tf.zeros(tf.stack([batch, 2 * upsampler.look_ahead_frames,
                                 student.conditioning_dim]), upsampler.compute_dtype)
    flows = [flow.stream_initial_state(batch, flow.compute_dtype) for flow in student.flows]
    if student.highpass is not None:
        # The output high-pass's last K - 1 samples, after every flow's state (float32).
        flows.append([tf.zeros(tf.stack([batch, student.highpass.history_length]),
                               tf.float32)])
    return context, flows


def state_sizes(student):
    """Values per example of each state tensor, in `pack_state` order."""
    half = student.upsampler.look_ahead_frames
    sizes = [2 * half * student.conditioning_dim]
    for flow in student.flows:
        sizes.append(1)
        sizes += [block.conv.queue_length * flow.channels for block in flow.blocks]
    if student.highpass is not None:
        sizes.append(student.highpass.history_length)
    return sizes


def pack_state(context, flow_states):
    """The state as one float32 `[batch, sum(state_sizes)]` tensor (what a client
    carries between `stream_step` calls)."""
    tensors = [context] + [s for flow in flow_states for s in flow]
    batch = tf.shape(context)[0]
    return tf.concat([tf.reshape(tf.cast(t, tf.float32), tf.stack([batch, -1]))
                      for t in tensors], axis=1)


def unpack_state(student, state):
    """Inverse of `pack_state`: `(context, flow_states)` in the student's compute dtypes."""
    sizes = state_sizes(student)
    batch = tf.shape(state)[0]
    parts = tf.split(state, sizes, axis=1)
    upsampler = student.upsampler
    half = upsampler.look_ahead_frames
    context = tf.cast(tf.reshape(parts[0], tf.stack([batch, 2 * half, student.conditioning_dim])),
                      upsampler.compute_dtype)
    flows, i = [], 1
    for flow in student.flows:
        dtype = flow.compute_dtype
        states = [tf.cast(parts[i], dtype)]
        i += 1
        for block in flow.blocks:
            states.append(tf.cast(tf.reshape(parts[i], tf.stack(
                [batch, block.conv.queue_length, flow.channels])), dtype))
            i += 1
        flows.append(states)
    if student.highpass is not None:
        flows.append([tf.reshape(parts[i], tf.stack([batch, student.highpass.history_length]))])
    return context, flows


# ---------------------------------------------------------------------------- synthesis
def _finish(audio, clip):
    audio = tf.cast(audio, tf.float32)
    return tf.clip_by_value(audio, -1.0, 1.0) if clip else audio


def synthesize_window(student, window, noise, global_conditioning, flow_states, clip=True):
    """Audio of the middle frames of `window`, and the flows' new states.

    Args:
        window: normalized features `[batch, n + 2 * half, dim]`: `n` frames with the
            `half` frames before and after them (zeros beyond the utterance's ends).
        noise: float32 `[batch, n * hop]`, the noise of those `n` frames.
        global_conditioning: the speaker embedding `[batch, S]` or None.
        flow_states: each flow's state after the samples before these frames (then the
            output high-pass's history, when the student has one).

    Returns:
        `(audio [batch, n * hop] float32, new_flow_states)`. The flows run in their
        compute dtype; the running sample `x = x * exp(log_s) + mu` stays float32.
    """
    conditioning = student.upsampler.stream(tf.cast(window, student.upsampler.compute_dtype))
    x = tf.cast(noise, tf.float32)
    new_states = []
    for flow, old_state in zip(student.flows, flow_states):
        mu, log_s, state = flow.stream(tf.cast(x, flow.compute_dtype), conditioning,
                                       global_conditioning, old_state)
        x = x * tf.exp(tf.cast(log_s, tf.float32)) + tf.cast(mu, tf.float32)
        new_states.append(state)
    if student.highpass is not None:
        (history,) = flow_states[len(student.flows)]
        new_states.append([student.highpass.history(x, history)])
        x = x + student.highpass.shift(x, history)
    return _finish(x, clip), new_states


def synthesize(student, features, noise, global_conditioning=None, chunk_frames=None,
               clip=True):
    """Raw features `[batch, F, dim]` and noise `[batch, F * hop]` -> audio `[batch, F * hop]`.

    `chunk_frames=None`: the student's parallel pass over the whole input. An int: the
    input goes `chunk_frames` frames at a time through `synthesize_window` in a
    `tf.while_loop` that carries the flows' queues, so the activations are those of one
    chunk (the noise and the audio are still whole); the audio equals the one-pass audio
    up to float rounding. Works eagerly and in a graph (dynamic batch and length).
    """
    if chunk_frames is None:
        conditioning = student.upsample_conditioning(features)
        audio = student.forward_from_conditioning(noise, conditioning,
                                                  global_conditioning)["audio"]
        return _finish(audio, clip)
    chunk = int(chunk_frames)
    if chunk < 1:
        raise ValueError(f"`chunk_frames` must be a positive integer. Received: {chunk_frames}")
    hop = student.hop_length
    half = student.upsampler.look_ahead_frames
    normalized = student.feature_normalizer(features)
    batch, frames = tf.shape(normalized)[0], tf.shape(normalized)[1]
    chunks = (frames + chunk - 1) // chunk
    tail = chunks * chunk - frames
    # "same" padding of the pre-convolution, plus zero frames up to whole chunks (the
    # flows are causal: the padded tail does not change the audio before it).
    padded = tf.pad(normalized, [[0, 0], [half, tail + half], [0, 0]])
    noise = tf.pad(tf.cast(noise, tf.float32), [[0, 0], [0, tail * hop]])
    _, flow_states = initial_stream_state(student, batch)

    def body(i, states, pieces):
        window = padded[:, i * chunk:i * chunk + chunk + 2 * half]
        z = noise[:, i * chunk * hop:(i + 1) * chunk * hop]
        audio, new_states = synthesize_window(student, window, z, global_conditioning, states,
                                              clip)
        # The loop carries the states with the static shapes they came in with.
        new_states = [[tf.ensure_shape(new, old.shape) for new, old in zip(flow_new, flow_old)]
                      for flow_new, flow_old in zip(new_states, states)]
        return i + 1, new_states, pieces.write(i, audio)

    pieces = tf.TensorArray(tf.float32, size=chunks, element_shape=[None, chunk * hop])
    _, _, pieces = tf.while_loop(lambda i, *_: i < chunks, body, (0, flow_states, pieces),
                                 parallel_iterations=1)
    audio = tf.reshape(tf.transpose(pieces.stack(), [1, 0, 2]), tf.stack([batch, -1]))
    return audio[:, :frames * hop]


# ---------------------------------------------------------------------------- streaming
def emitted_frames(pushed, look_ahead):
    """Frames of audio a stream has emitted after `pushed` frames (before its flush): the
    last `look_ahead` frames wait for their look-ahead."""
    return tf.maximum(tf.cast(pushed, tf.int64) - look_ahead, 0)


def stream_step(student, context, normalized, pushed, noise, global_conditioning, flow_states,
                clip=True, window_fn=None):
    """One push of a stream: the audio of the frames that became ready, and the new state.

    The stream is the utterance's normalized frames with `half` zero frames before them
    (the upsampler's padding); `context` holds the last `2 * half` frames of it pushed so
    far (zeros before the first push), `pushed` counts the utterance's frames before this
    push. Pushing `n` frames makes frames `emitted_frames(pushed)` to
    `emitted_frames(pushed + n) - 1` ready; a flush is a push of `half` zero frames
    (their audio is not part of the utterance; the stream ends).

    Args:
        normalized: `[batch, n, dim]` normalized frames, any `n >= 0`.
        noise: float32 `[batch, ready * hop]`: the noise of the ready frames.
        window_fn: what runs `synthesize_window(student, window, noise,
            global_conditioning, flow_states, clip)` (for example an XLA-compiled copy:
            the window's size is only known at run time, so the step itself is not
            compiled). Default: `synthesize_window`.

    Returns:
        `(audio [batch, ready * hop], new_context, new_flow_states)`.
    """
    half = student.upsampler.look_ahead_frames
    n = tf.cast(tf.shape(normalized)[1], tf.int64)
    pushed = tf.cast(pushed, tf.int64)
    before = emitted_frames(pushed, half)
    ready = emitted_frames(pushed + n, half) - before
    buf = tf.concat([context, tf.cast(normalized, context.dtype)], axis=1)
    # The first ready frame's window starts at stream index `before`; `buf` starts at
    # stream index `pushed + half - 2 * half`.
    offset = tf.cast(before - (pushed - half), tf.int32)
    new_context = buf[:, tf.shape(buf)[1] - 2 * half:]

    def run():
        window = buf[:, offset:offset + tf.cast(ready, tf.int32) + 2 * half]
        if window_fn is not None:
            return window_fn(window, noise, global_conditioning, flow_states)
        return synthesize_window(student, window, noise, global_conditioning, flow_states,
                                 clip)

    def idle():
        return tf.zeros([tf.shape(buf)[0], 0], tf.float32), flow_states

    audio, new_states = tf.cond(ready > 0, run, idle)
    return audio, new_context, new_states
