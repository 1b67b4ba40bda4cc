import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio import quantize as qz

ALL_CODES = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)


def test_constants():
    assert qz.PCM16_HALF_BIN == 1.0 / 65535.0
    assert qz.PCM16_LEVELS == 65536


def test_pcm16_round_trip_all_codes_numpy():
    x = qz.pcm16_to_float(ALL_CODES)
    assert x.dtype == np.float32 and x.shape == (65536,)
    assert x[0] == -1.0 and x[-1] == 1.0
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(np.diff(x.astype(np.float64)), 2.0 / 65535.0, rtol=0, atol=1e-7)
    back = qz.float_to_pcm16(x)
    assert back.dtype == np.int16
    np.testing.assert_array_equal(back, ALL_CODES)
    np.testing.assert_array_equal(qz.quantize_16bit(x), x)


def test_pcm16_round_trip_all_codes_tensor_matches_numpy():
    x = qz.pcm16_to_float(tf.constant(ALL_CODES))
    assert x.dtype == tf.float32
    np.testing.assert_array_equal(x.numpy(), qz.pcm16_to_float(ALL_CODES))
    back = qz.float_to_pcm16(x)
    assert back.dtype == tf.int16
    np.testing.assert_array_equal(back.numpy(), ALL_CODES)


def test_float_to_pcm16_clips_and_rounds():
    x = np.array([-5.0, -1.0, 0.0, 1.0, 7.0, qz.PCM16_HALF_BIN * 0.99, -qz.PCM16_HALF_BIN * 0.99])
    q = qz.float_to_pcm16(x)
    # 0.0 is the bin edge between codes -1 and 0; ties round half to even (32768 -> code 0).
    np.testing.assert_array_equal(q[:5], [-32768, -32768, 0, 32767, 32767])
    np.testing.assert_array_equal(q[5:], [0, -1])
    np.testing.assert_array_equal(qz.float_to_pcm16(tf.constant(x)).numpy(), q)


def test_quantize_16bit_error_within_half_bin():
    x = np.random.default_rng(0).uniform(-1, 1, size=10_000)
    y = qz.quantize_16bit(x)
    assert y.dtype == np.float32
    assert np.abs(y.astype(np.float64) - x).max() <= qz.PCM16_HALF_BIN + 1e-7
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(qz.quantize_16bit(tf.constant(x32)).numpy(), qz.quantize_16bit(x32))


def test_pcm16_errors():
    with pytest.raises(ValueError, match="integer PCM codes"):
        qz.pcm16_to_float(np.array([0.5]))
    with pytest.raises(ValueError, match=r"\[-32768, 32767\].*max=40000"):
        qz.pcm16_to_float(np.array([0, 40000]))
    with pytest.raises(ValueError, match="NaN"):
        qz.float_to_pcm16(np.array([0.0, np.nan]))


def test_mu_law_edges_and_range():
    codes = qz.mu_law_encode(np.array([-1.0, 0.0, 1.0, -3.0, 3.0]))
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(codes, [0, 128, 255, 0, 255])
    dec = qz.mu_law_decode(np.array([0, 255]))
    assert dec.dtype == np.float32
    np.testing.assert_allclose(dec, [-1.0, 1.0], atol=1e-7)
    all_codes = np.arange(256)
    np.testing.assert_array_equal(qz.mu_law_encode(qz.mu_law_decode(all_codes)), all_codes)


@pytest.mark.parametrize("channels", [256, 1024])
def test_mu_law_round_trip_error_bound(channels):
    mu = channels - 1
    x = np.random.default_rng(1).uniform(-1, 1, size=20_000)
    err = np.abs(qz.mu_law_decode(qz.mu_law_encode(x, channels), channels) - x)
    # Half a code in the companded domain: |dx| <= log1p(mu) (1 + mu |x|) / mu^2 (+2% curvature).
    bound = 1.03 * np.log1p(mu) * (1 + mu * np.abs(x)) / mu**2
    assert np.all(err <= bound)
    if channels == 256:
        assert err.max() < 0.022 and err[np.abs(x) < 0.01].max() < 3e-4


def test_mu_law_tensor_matches_numpy():
    x = np.linspace(-1, 1, 1001)
    codes = qz.mu_law_encode(tf.constant(x, tf.float32))
    assert codes.dtype == tf.int32
    np.testing.assert_array_equal(codes.numpy(), qz.mu_law_encode(x.astype(np.float32)))
    dec = qz.mu_law_decode(codes)
    np.testing.assert_allclose(dec.numpy(), qz.mu_law_decode(codes.numpy()), atol=1e-6)


def test_mu_law_errors():
    with pytest.raises(ValueError, match="channels=1"):
        qz.mu_law_encode(np.zeros(3), channels=1)
    with pytest.raises(ValueError, match=r"\[0, 255\].*max=256"):
        qz.mu_law_decode(np.array([0, 256]))
