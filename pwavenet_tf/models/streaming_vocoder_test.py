import numpy as np
import pytest
from keras import ops

from pwavenet_tf.models.streaming_vocoder import LogisticNoise, StreamingVocoder
from pwavenet_tf.models.student_generator import draw_logistic_noise
from pwavenet_tf.testing.students import TINY_STUDENT, tiny_student

TINY = dict(TINY_STUDENT, flow_layers=(2, 3))


def _np(x):
    return ops.convert_to_numpy(x)


def _student(seed=1, **overrides):
    return tiny_student(seed, **dict(TINY, **overrides))


def _features(batch=1, frames=17, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, frames, 5)).astype("float32")


def _one_pass(student, feats, seed, speaker_id=None):
    noise = draw_logistic_noise(feats.shape[0], feats.shape[1] * student.hop_length, seed)
    inputs = {"noise": _np(noise), "features": feats}
    if speaker_id is not None:
        inputs["speaker_id"] = np.asarray(speaker_id, "int32")
    return _np(student(inputs)["audio"])


def _stream(vocoder, feats, chunk):
    pieces = [vocoder.push(feats[..., i:i + chunk, :]) for i in range(0, feats.shape[-2], chunk)]
    pieces.append(vocoder.flush())
    return np.concatenate(pieces, axis=-1)


def test_noise_ranges_equal_the_one_pass_draw():
    whole = _np(draw_logistic_noise(1, 1001, (7, 3)))
    noise = LogisticNoise((7, 3))
    for a, b in ((0, 1001), (5, 17), (998, 1001), (3, 4), (0, 0)):
        np.testing.assert_allclose(_np(noise(1, a, b)), whole[:, a:b], atol=1e-6)
    batched = _np(draw_logistic_noise(3, 50, (2, 0)))
    np.testing.assert_allclose(_np(LogisticNoise(2, length=50)(3, 13, 50)), batched[:, 13:],
                               atol=1e-6)
    # Without the length, rows are still the same whatever the split.
    rows = LogisticNoise(2)
    np.testing.assert_allclose(
        np.concatenate([_np(rows(2, 0, 10)), _np(rows(2, 10, 30))], 1), _np(rows(2, 0, 30)),
        atol=1e-6)
    assert np.abs(_np(rows(2, 0, 30))[0] - _np(rows(2, 0, 30))[1]).max() > 1.0


@pytest.mark.parametrize("interpolation,highpass", [("none", 0.0), ("linear", 0.0),
                                                    ("linear", 0.02)])
@pytest.mark.parametrize("chunk", [1, 3, 7, 17])
def test_streaming_equals_one_pass(chunk, interpolation, highpass):
    student = _student(upsampler_interpolation=interpolation, output_highpass=highpass)
    feats = _features()
    want = _one_pass(student, feats, (4, 0))
    assert np.abs(want).max() < 1.0  # no clipping: the comparison is of the raw audio
    got = _stream(StreamingVocoder(student, seed=4), feats[0], chunk)
    assert got.shape == (17 * 4,) and got.dtype == np.float32
    np.testing.assert_allclose(got, want[0], atol=1e-5)


def test_streaming_is_not_trivially_equal():
    """Without the queues (a fresh state every chunk) the output differs."""
    student = _student()
    feats = _features()
    want = _one_pass(student, feats, (4, 0))[0]
    pieces = []
    for i in range(0, 17, 3):
        v = StreamingVocoder(student, noise=lambda b, s, e, o=i * 4: LogisticNoise(4)(b, s + o, e + o))
        pieces.append(np.concatenate([v.push(feats[0, i:i + 3]), v.flush()]))
    assert np.abs(np.concatenate(pieces) - want).max() > 1e-3


def test_streaming_multi_speaker_batch():
    student = _student(num_speakers=3)
    feats = _features(batch=2, frames=9)
    sid = [2, 0]
    want = _one_pass(student, feats, (1, 0), sid)
    vocoder = StreamingVocoder(student, speaker_id=sid,
                               noise=LogisticNoise(1, length=9 * student.hop_length))
    np.testing.assert_allclose(_stream(vocoder, feats, 4), want, atol=1e-5)
    with pytest.raises(ValueError, match="speaker_id"):
        StreamingVocoder(student)
    with pytest.raises(ValueError, match="speaker_id"):
        StreamingVocoder(student, speaker_id=[3])


def test_first_audio_lags_by_the_look_ahead_and_flush_resets():
    student = _student()
    vocoder = StreamingVocoder(student, seed=4)
    feats = _features()[0]
    assert vocoder.look_ahead_frames == 1
    assert vocoder.push(feats[:1]).shape == (0,)  # waits for frame 1
    assert vocoder.push(feats[1:3]).shape == (8,)  # frames 0 and 1
    assert vocoder.push(feats[3:3]).shape == (0,)
    assert vocoder.flush().shape == (4,)  # frame 2
    assert vocoder.samples_emitted == 0 and vocoder.state == []
    # After the reset the same utterance gives the same audio.
    np.testing.assert_allclose(_stream(vocoder, feats, 5),
                               _one_pass(student, feats[None], (4, 0))[0], atol=1e-5)
    assert vocoder.flush().shape == (0,)


def test_state_size_is_independent_of_the_input_length():
    student = _student()
    feats = _features(frames=100)[0]
    shapes = []
    for frames in (10, 100):
        vocoder = StreamingVocoder(student)
        for i in range(0, frames, 5):
            vocoder.push(feats[i:i + 5])
        shapes.append([tuple(s.shape) for s in vocoder.state])
    assert shapes[0] == shapes[1]
    # Context of 2 frames + per flow 1 sample and the blocks' (k-1)*d queues (d = 1, 2, 1).
    assert StreamingVocoder(student).state_size == 0
    vocoder = StreamingVocoder(student)
    vocoder.push(feats[:3])
    assert vocoder.state_size == 2 * 5 + (1 + 8 * (2 + 4)) + (1 + 8 * (2 + 4 + 2))


def test_bad_frames():
    vocoder = StreamingVocoder(_student())
    with pytest.raises(ValueError, match=r"must be \[frames, 5\] or \[batch, frames, 5\]"):
        vocoder.push(np.zeros((3, 7)))
    with pytest.raises(ValueError, match="must be"):
        vocoder.push(np.zeros((3,)))
    nan = np.zeros((3, 5), "float32")
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        vocoder.push(nan)
    with pytest.raises(ValueError, match="hold numbers"):
        vocoder.push(np.array([["a"] * 5]))
    vocoder.push(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="batch 2"):
        vocoder.push(np.zeros((1, 3, 5)))
    with pytest.raises(ValueError, match="same rank"):
        vocoder.push(np.zeros((3, 5)))
