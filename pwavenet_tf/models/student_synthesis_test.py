import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.models import student_synthesis as synthesis
from pwavenet_tf.testing.students import TINY_STUDENT, tiny_student


def _features(batch, frames, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, frames, 5)).astype("float32")


def _one_pass(student, feats, noise, gc=None):
    return synthesis.synthesize(student, tf.constant(feats), noise, gc).numpy()


def test_counter_addition_carries_into_the_high_word():
    def add(low, high, steps):
        counter = tf.constant(np.array([low, high], np.uint64))
        return [int(v) for v in synthesis._add_to_counter(counter, tf.constant(steps, tf.int64))
                .numpy()]

    assert add(5, 9, 3) == [8, 9]
    assert add(2 ** 64 - 1, 9, 1) == [0, 10]
    assert add(2 ** 63 - 1, 0, 1) == [2 ** 63, 0]
    assert add(2 ** 64 - 2, 2 ** 64 - 1, 5) == [3, 0]


def test_noise_ranges_in_a_graph_equal_the_whole_draw():
    whole = synthesis.draw_logistic_noise(3, 401, tf.constant([11, 2], tf.int64)).numpy()
    ranged = tf.function(synthesis.logistic_noise_range)
    for start, stop in ((0, 401), (1, 2), (7, 300), (397, 401)):
        got = ranged(tf.constant([11, 2], tf.int64), tf.constant(3, tf.int64),
                     tf.constant(start, tf.int64), tf.constant(stop, tf.int64),
                     tf.constant(401, tf.int64)).numpy()
        np.testing.assert_allclose(got, whole[:, start:stop], atol=1e-6)
    # Another seed gives other noise.
    other = synthesis.logistic_noise_range([12, 2], 1, 0, 50, 401).numpy()
    assert np.abs(other - whole[:1, :50]).max() > 1.0


@pytest.mark.parametrize("chunk", [1, 2, 5, 13, 40])
def test_chunked_synthesis_in_a_graph_equals_the_one_pass(chunk):
    student = tiny_student(1, flow_layers=(2, 3))
    feats = _features(2, 13)
    noise = synthesis.draw_logistic_noise(2, 13 * 4, tf.constant([3, 0], tf.int64))
    want = _one_pass(student, feats, noise)
    assert np.abs(want).max() < 1.0 and np.abs(want).std() > 1e-2

    @tf.function(input_signature=[tf.TensorSpec([None, None, 5]), tf.TensorSpec([None, None])])
    def chunked(f, z):  # dynamic batch and length: one trace serves every input
        return synthesis.synthesize(student, f, z, chunk_frames=chunk)

    got = chunked(tf.constant(feats), noise).numpy()
    assert got.shape == (2, 52)
    np.testing.assert_allclose(got, want, atol=1e-5)
    shorter = chunked(tf.constant(feats[:1, :6]), noise[:1, :24]).numpy()
    np.testing.assert_allclose(shorter, _one_pass(student, feats[:1, :6], noise[:1, :24]),
                               atol=1e-5)


def test_chunked_synthesis_multi_speaker():
    student = tiny_student(2, num_speakers=3)
    feats = _features(2, 9, seed=4)
    noise = synthesis.draw_logistic_noise(2, 36, tf.constant([1, 0], tf.int64))
    gc = student.global_conditioning(tf.constant([2, 0]))
    want = _one_pass(student, feats, noise, gc)
    got = synthesis.synthesize(student, tf.constant(feats), noise, gc, chunk_frames=4).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    other = synthesis.synthesize(student, tf.constant(feats), noise,
                                 student.global_conditioning(tf.constant([1, 1]))).numpy()
    assert np.abs(other - want).max() > 1e-3


def test_chunk_frames_is_validated():
    student = tiny_student(1)
    with pytest.raises(ValueError, match="chunk_frames"):
        synthesis.synthesize(student, tf.zeros([1, 3, 5]), tf.zeros([1, 12]), chunk_frames=0)


def test_packed_state_round_trips_and_has_the_model_size():
    student = tiny_student(1, flow_layers=(2, 3))
    context, flows = synthesis.initial_stream_state(student, 2)
    rng = np.random.default_rng(0)
    context = tf.constant(rng.normal(size=context.shape).astype("float32"))
    flows = [[tf.constant(rng.normal(size=s.shape).astype("float32")) for s in f] for f in flows]
    packed = synthesis.pack_state(context, flows)
    # Context 2 * 1 frames x 5, per flow the previous sample and (k-1)*d*channels per block.
    queues = [2 * 1, 2 * 2] + [2 * 1, 2 * 2, 2 * 1]
    assert packed.shape == (2, 10 + 2 + sum(q * TINY_STUDENT["channels"] for q in queues))
    assert sum(synthesis.state_sizes(student)) == packed.shape[1]
    got_context, got_flows = synthesis.unpack_state(student, packed)
    np.testing.assert_array_equal(got_context.numpy(), context.numpy())
    for want, got in zip(flows, got_flows):
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_stream_step_with_a_packed_state_equals_the_one_pass():
    """Pushes of 0, 1, 4 and 8 frames through `stream_step` with the state packed and
    unpacked between calls (what a TF Serving client carries), then the flush."""
    student = tiny_student(3, flow_layers=(2, 3))
    feats = _features(1, 13, seed=5)
    seed = tf.constant([9, 0], tf.int64)
    want = _one_pass(student, feats, synthesis.draw_logistic_noise(1, 52, seed))
    normalized = student.feature_normalizer(tf.constant(feats))
    state = synthesis.pack_state(*synthesis.initial_stream_state(student, 1))
    pushed, emitted, pieces = 0, 0, []
    for n in (0, 1, 4, 8, None):
        final = n is None
        frames = tf.zeros([1, 1, 5]) if final else normalized[:, pushed:pushed + n]
        n = frames.shape[1]
        ready = int(synthesis.emitted_frames(pushed + n, 1) - synthesis.emitted_frames(pushed, 1))
        noise = synthesis.logistic_noise_range(seed, 1, emitted * 4, (emitted + ready) * 4, 52)
        context, flows = synthesis.unpack_state(student, state)
        audio, context, flows = synthesis.stream_step(student, context, frames, pushed, noise,
                                                      None, flows)
        assert audio.shape == (1, ready * 4)
        pieces.append(audio.numpy())
        state = synthesis.pack_state(context, flows)
        emitted += ready
        pushed += 0 if final else n
    np.testing.assert_allclose(np.concatenate(pieces, 1), want, atol=1e-5)
