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


def test_window_shorter_than_the_fft_matches_a_numpy_reference():
    """Parallel WaveGAN's resolutions: a 600-sample Hann window zero-padded to a 1024 FFT."""
    loss = MultiResolutionSTFTLoss((1024,), win_lengths=(600,), hop_lengths=(120,))
    noisy = (Y + rng.normal(0, 0.01, size=Y.shape)).astype("float32")

    def mags(x):
        w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(600) / 600)  # periodic Hann
        # the window sits centred in each 1024-sample frame (212 zeros each side)
        frames = [x[0, i + 212:i + 812] * w for i in range(0, x.shape[1] - 1024 + 1, 120)]
        spec = np.abs(np.fft.rfft(np.stack(frames), n=1024)) ** 2 / (3 * 600 / 8)
        return np.sqrt(spec + 1e-10)

    g, y = mags(noisy.astype("float64")), mags(Y.astype("float64"))
    ref = np.linalg.norm(y - g) / np.linalg.norm(y) + np.mean(np.abs(np.log(y) - np.log(g)))
    assert float(loss(noisy, Y)) == pytest.approx(ref, rel=1e-3)
    config = loss.get_config()
    assert config["win_lengths"] == [600] and config["hop_lengths"] == [120]
    assert MultiResolutionSTFTLoss.from_config(config).win_lengths == (600,)


def test_bad_resolutions_name_the_argument():
    with pytest.raises(ValueError, match="win_lengths"):
        MultiResolutionSTFTLoss((512,), win_lengths=(1024,))
    with pytest.raises(ValueError, match="hop_lengths"):
        MultiResolutionSTFTLoss((512, 256), hop_lengths=(100,))
