import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.losses.spectral_loss import MultiResolutionSTFTLoss

rng = np.random.default_rng(0)
T = 4096
t = np.arange(T) / 22050.0
Y = (0.1 * np.sin(2 * np.pi * 440 * t) * (t < 0.09)).astype("float32")[None]


def test_zero_for_identical_and_positive_otherwise():
    loss = MultiResolutionSTFTLoss((512, 128))
    assert float(loss(Y, Y)) == pytest.approx(0.0, abs=1e-6)
    noisy = Y + rng.normal(0, 0.01, size=Y.shape).astype("float32")
    assert float(loss(noisy, Y)) > 0.1


def test_frame_level_unlike_the_power_loss():
    """Moving the tone in time keeps the time-averaged power but not the spectrogram."""
    loss = MultiResolutionSTFTLoss((256,))
    shifted = np.roll(Y, T // 2, axis=1)
    assert float(loss(shifted, Y)) > 1.0


def test_gradient_is_finite():
    loss = MultiResolutionSTFTLoss((256, 64))
    g = tf.Variable(rng.normal(0, 0.05, size=Y.shape).astype("float32"))
    with tf.GradientTape() as tape:
        value = loss(g, Y)
    grad = tape.gradient(value, g).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
    assert MultiResolutionSTFTLoss.from_config(loss.get_config()).fft_sizes == (256, 64)


def test_bad_arguments():
    with pytest.raises(ValueError, match="fft_sizes"):
        MultiResolutionSTFTLoss((8,))
