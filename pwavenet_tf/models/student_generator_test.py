import numpy as np
import pytest
from keras import ops

from pwavenet_tf.models.student_generator import StudentGenerator
from pwavenet_tf.testing.students import TINY_STUDENT, tiny_student

TINY = TINY_STUDENT


def _np(x):
    return ops.convert_to_numpy(x)


def _generator(seed=1, **overrides):
    return StudentGenerator(tiny_student(seed, **overrides))


def _features(batch=2, frames=12, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, frames, 5)).astype("float32")


def test_logistic_noise():
    a = _np(StudentGenerator.logistic_noise(4, 5000, (1, 2)))
    assert a.shape == (4, 5000) and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, _np(StudentGenerator.logistic_noise(4, 5000, (1, 2))))
    assert np.abs(a - _np(StudentGenerator.logistic_noise(4, 5000, (1, 3)))).max() > 1.0
    assert abs(a.mean()) < 0.05 and abs(a.std() - np.pi / np.sqrt(3)) < 0.05


def test_generate_is_the_model_on_the_drawn_noise_and_seeded():
    gen = _generator()
    feats = _features(frames=6)
    audio = _np(gen.generate(feats, seed=(3, 4)))
    assert audio.shape == (2, 24) and audio.dtype == np.float32
    assert np.all(np.abs(audio) <= 1.0)
    noise = _np(StudentGenerator.logistic_noise(2, 24, (3, 4)))
    ref = _np(gen.student({"noise": noise, "features": feats})["audio"])
    np.testing.assert_allclose(audio, np.clip(ref, -1, 1), atol=1e-6)
    np.testing.assert_array_equal(audio, _np(gen.generate(feats, seed=(3, 4))))
    # A single-speaker student ignores speaker ids (0 by convention).
    np.testing.assert_array_equal(audio, _np(gen.generate(feats, [0, 0], seed=(3, 4))))
    assert np.abs(audio - _np(gen.generate(feats, seed=(5, 4)))).max() > 1e-3


@pytest.mark.parametrize("speakers", [0, 3])
def test_chunked_equals_unchunked(speakers):
    gen = _generator(num_speakers=speakers)
    feats = _features(frames=13)
    sid = np.array([2, 0], "int32") if speakers else None
    full = _np(gen.generate(feats, sid, seed=(7, 1)))
    for chunk in (1, 4, 12):
        chunked = _np(gen.generate(feats, sid, seed=(7, 1), chunk_frames=chunk))
        np.testing.assert_allclose(chunked, full, atol=1e-5)


def test_chunked_xla_equals_unchunked():
    gen = _generator()
    feats = _features(frames=7)
    full = _np(gen.generate(feats, seed=(2, 5)))
    chunked = _np(gen.generate(feats, seed=(2, 5), chunk_frames=3, jit_compile=True))
    np.testing.assert_allclose(chunked, full, atol=1e-5)


def test_xla_matches_graph_mode():
    gen = _generator()
    feats = _features(frames=5)
    a = _np(gen.generate(feats, seed=(1, 1)))
    b = _np(gen.generate(feats, seed=(1, 1), jit_compile=True))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_bad_inputs():
    gen = _generator()
    with pytest.raises(ValueError, match="features"):
        gen.generate(np.zeros((1, 2, 7)))
    with pytest.raises(ValueError, match="chunk_frames"):
        gen.generate(_features(), chunk_frames=0)
    multi = _generator(num_speakers=3)
    with pytest.raises(ValueError, match="speaker_id"):
        multi.generate(_features())
    with pytest.raises(ValueError, match="speaker_id"):
        multi.generate(_features(), speaker_id=[0, 1, 2])
