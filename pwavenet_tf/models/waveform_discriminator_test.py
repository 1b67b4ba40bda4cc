import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio.audio_io import read_audio
from pwavenet_tf.losses.adversarial_loss import discriminator_loss
from pwavenet_tf.models.waveform_discriminator import WaveformDiscriminator

CLIPS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "clips")


def _audio(batch=2, length=256, seed=0):
    return np.random.default_rng(seed).normal(0, 0.1, (batch, length)).astype("float32")


def test_shapes_dilations_and_receptive_field():
    d = WaveformDiscriminator(num_layers=4, channels=8)
    logits, features = d(_audio())
    assert tuple(logits.shape) == (2, 256)
    assert [tuple(f.shape) for f in features] == [(2, 256, 8)] * 3
    assert d.dilations == [1, 2, 4]
    assert d.receptive_field == 2 * (1 + 2 + 4 + 1) + 1
    default = WaveformDiscriminator()
    assert default.dilations == [2 ** i for i in range(9)]  # 1 .. 2^(L-2)
    assert default.receptive_field == 1025
    assert WaveformDiscriminator(num_layers=5, dilation_base=1).dilations == [1, 1, 2, 3]
    # [batch, time, 1] is the same input as [batch, time].
    again, _ = d(_audio()[..., None])
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(again))


def test_non_causal_and_limited_to_the_receptive_field():
    """A change at t moves the logits before and after t, and nothing outside the field."""
    d = WaveformDiscriminator(num_layers=4, channels=8, kernel_initializer="glorot_normal")
    x = _audio(batch=1, length=200)
    y = x.copy()
    y[0, 100] += 1.0
    diff = np.abs(np.asarray(d(y)[0]) - np.asarray(d(x)[0]))[0]
    half = (d.receptive_field - 1) // 2  # 8
    assert diff[100 - half] > 0 and diff[100 + half] > 0  # sees the past and the future
    assert diff[: 100 - half].max() == 0 and diff[100 + half + 1:].max() == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"num_layers": 1}, "num_layers=1"),
    ({"channels": 0}, "channels=0"),
    ({"kernel_size": 4}, "kernel_size=4"),
    ({"dilation_base": 0}, "dilation_base=0"),
    ({"negative_slope": -0.1}, "negative_slope=-0.1"),
    ({"num_layers": 2.5}, "num_layers=2.5"),
])
def test_invalid_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=f"Received: {match}"):
        WaveformDiscriminator(**kwargs)


def test_stereo_input_is_refused():
    with pytest.raises(ValueError, match="batch, time"):
        WaveformDiscriminator(num_layers=3, channels=4)(np.zeros((1, 64, 2), "float32"))


def test_config_and_saving_round_trip(tmp_path):
    d = WaveformDiscriminator(num_layers=3, channels=4, dilation_base=1, negative_slope=0.1,
                              name="discriminator")
    x = _audio(length=128)
    logits, features = d(x)
    config = d.get_config()
    revived = WaveformDiscriminator.from_config(config)
    assert revived.get_config() == config
    revived(x)
    revived.set_weights(d.get_weights())
    np.testing.assert_allclose(np.asarray(revived(x)[0]), np.asarray(logits), atol=1e-6)
    # Variable paths do not depend on what the process created before.
    assert [v.path for v in d.weights] == [
        "discriminator/conv_0/kernel", "discriminator/conv_0/bias",
        "discriminator/conv_1/kernel", "discriminator/conv_1/bias",
        "discriminator/logits/kernel", "discriminator/logits/bias"]

    inputs = keras.Input((None,))
    model = keras.Model(inputs, d(inputs))
    path = str(tmp_path / "d.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    out_logits, out_features = restored(x)
    np.testing.assert_allclose(np.asarray(out_logits), np.asarray(logits), atol=1e-6)
    for a, b in zip(out_features, features):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def _speech_windows(n, length, rng):
    clips = [read_audio(os.path.join(CLIPS, f)) for f in sorted(os.listdir(CLIPS))
             if f.endswith(".wav")]
    out = []
    while len(out) < n:
        clip = clips[len(out) % len(clips)]
        start = rng.integers(0, len(clip) - length)
        window = clip[start:start + length]
        if np.sqrt(np.mean(window ** 2)) > 0.02:  # skip silences
            out.append(window)
    return np.stack(out).astype("float32")


def test_the_loss_falls_on_real_speech_against_white_noise():
    """LSGAN discriminator loss on speech windows vs white noise of the same loudness:
    about 1.04 at the start (measured 0.31 at the end), below half of it after 40 Adam steps."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    d = WaveformDiscriminator(num_layers=6, channels=16)
    opt = keras.optimizers.Adam(1e-3)
    real = _speech_windows(4, 2048, rng)
    rms = np.sqrt(np.mean(real ** 2, axis=1, keepdims=True))
    fake = (rng.normal(0, 1, real.shape) * rms).astype("float32")

    def loss():
        return discriminator_loss(d(real)[0], d(fake)[0])

    initial = float(loss())
    for _ in range(40):
        with tf.GradientTape() as tape:
            value = loss()
        grads = tape.gradient(value, d.trainable_variables)
        opt.apply_gradients(zip(grads, d.trainable_variables))
    final = float(loss())
    print(f"discriminator loss speech vs noise: {initial:.4f} -> {final:.4f}")
    assert final < 0.5 * initial, (initial, final)
