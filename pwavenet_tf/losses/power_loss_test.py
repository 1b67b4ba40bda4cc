import os
import wave

import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.losses.power_loss import PowerLoss, average_power_spectrum
from pwavenet_tf.testing.data import ljspeech_mini_dir

WAV = os.path.join(ljspeech_mini_dir(), "wavs", "LJ001-0001.wav")


def _speech(num_samples=22050, offset=22050):
    """Real speech (LJ001-0001) in [-1, 1], shape [1, num_samples]."""
    with wave.open(WAV) as w:
        q = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    x = q[offset : offset + num_samples].astype(np.float32) / 32768.0
    assert x.shape == (num_samples,)
    return x[None]


def _value(x):
    return float(keras.ops.convert_to_numpy(x))


def test_identical_signals_give_exactly_zero():
    y = np.concatenate([_speech(), _speech(offset=60000)], axis=0)
    assert _value(PowerLoss()(y, y)) == 0.0
    assert _value(PowerLoss(log_floor=1e-8)(y, y)) == 0.0


def test_whisper_mismatch_is_clearly_positive_and_monotonic():
    y = _speech()
    loss = PowerLoss()
    whisper = _value(loss(0.1 * y, y))
    half = _value(loss(0.5 * y, y))
    slight = _value(loss(0.95 * y, y))
    assert whisper > 0.1, whisper  # O(1) for speech at [-1, 1] scale
    assert whisper > half > slight > 0.0
    # A louder output is penalised too.
    assert _value(loss(2.0 * y, y)) > half
    # Small waveform noise costs far less than the whisper mismatch.
    noisy = y + 0.01 * np.random.default_rng(0).standard_normal(y.shape).astype(np.float32)
    assert 0.0 < _value(loss(noisy, y)) < 1e-2 * whisper


def test_different_spectra_positive_and_per_resolution_sum():
    t = np.arange(8192) / 16000.0
    a = (0.3 * np.sin(2 * np.pi * 300 * t))[None].astype(np.float32)
    b = (0.3 * np.sin(2 * np.pi * 3000 * t))[None].astype(np.float32)
    loss = PowerLoss(fft_sizes=(1024, 256))
    terms = loss.per_resolution(a, b)
    assert set(terms) == {1024, 256}
    total = _value(loss(a, b))
    assert total > 0
    np.testing.assert_allclose(total, sum(_value(v) for v in terms.values()), rtol=1e-6)


def test_average_power_spectrum_normalisation():
    rng = np.random.default_rng(1)
    noise = (0.2 * rng.standard_normal((2, 32768))).astype(np.float32)
    phi = keras.ops.convert_to_numpy(average_power_spectrum(noise, 512, 128))
    assert phi.shape == (2, 257)
    # White noise of variance v has a flat density ~ v per bin, independent of fft size.
    np.testing.assert_allclose(phi[:, 1:-1].mean(), 0.04, rtol=0.05)
    phi_small = keras.ops.convert_to_numpy(average_power_spectrum(noise, 64, 16))
    np.testing.assert_allclose(phi_small[:, 1:-1].mean(), 0.04, rtol=0.05)
    # A sinusoid peaks at its bin.
    t = np.arange(4096)
    tone = np.sin(2 * np.pi * 32 * t / 512)[None].astype(np.float32)
    phi_tone = keras.ops.convert_to_numpy(average_power_spectrum(tone, 512, 128))
    assert int(np.argmax(phi_tone[0])) == 32


def test_gradient_wrt_generated_is_finite_and_nonzero():
    y = tf.constant(_speech(8192))
    g = tf.Variable(0.3 * _speech(8192, offset=40000))
    with tf.GradientTape() as tape:
        value = PowerLoss()(g, y)
    grad = tape.gradient(value, g).numpy()
    assert np.all(np.isfinite(grad))
    assert np.abs(grad).max() > 0


def test_short_inputs_are_zero_padded():
    rng = np.random.default_rng(2)
    short = (0.3 * rng.standard_normal((2, 300))).astype(np.float32)
    loss = PowerLoss()  # largest fft size 2048 > 300 samples
    assert _value(loss(short, short)) == 0.0
    value = _value(loss(0.1 * short, short))
    assert np.isfinite(value) and value > 0
    g = tf.Variable(0.1 * short)
    with tf.GradientTape() as tape:
        v = loss(g, short)
    grad = tape.gradient(v, g).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


def test_dynamic_shapes_in_tf_function():
    loss = PowerLoss(fft_sizes=(512, 128))

    @tf.function(input_signature=[tf.TensorSpec([None, None]), tf.TensorSpec([None, None])])
    def f(g, y):
        return loss(g, y)

    y = _speech(4000)
    np.testing.assert_allclose(f(0.5 * y, y).numpy(), _value(loss(0.5 * y, y)), rtol=1e-5)
    assert f(y[:, :100], y[:, :100]).numpy() == 0.0


def test_invalid_arguments_and_inputs_raise():
    with pytest.raises(ValueError, match="fft_size"):
        PowerLoss(fft_sizes=(512, 1))
    with pytest.raises(ValueError, match="fft_sizes"):
        PowerLoss(fft_sizes=())
    with pytest.raises(ValueError, match="hop_ratio"):
        PowerLoss(hop_ratio=0.0)
    with pytest.raises(ValueError, match="log_floor"):
        PowerLoss(log_floor=-1.0)
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        PowerLoss()(np.zeros((4096,), np.float32), np.zeros((4096,), np.float32))
    with pytest.raises(ValueError, match="hop"):
        average_power_spectrum(np.zeros((1, 100), np.float32), 64, 0)


def test_config_round_trip_and_keras_serialization():
    loss = PowerLoss(fft_sizes=(256, 64), hop_ratio=0.5, log_floor=1e-7)
    assert PowerLoss.from_config(loss.get_config()).get_config() == loss.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(revived, PowerLoss)
    assert revived.get_config() == loss.get_config()
    y = _speech(2000)
    np.testing.assert_allclose(_value(revived(0.5 * y, y)), _value(loss(0.5 * y, y)))
