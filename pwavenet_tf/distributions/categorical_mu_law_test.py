"""Tests for the 256-way mu-law categorical output."""

import importlib.util
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.distributions.categorical_mu_law import (
    CategoricalMuLaw,
    CategoricalMuLawLoss,
    _mu_law_decode,
    _mu_law_encode,
    mu_law_nll_loss,
)


def np_encode(x, channels=256):
    """The standard formula (float64), as in pwavenet_tf.audio.quantize."""
    mu = channels - 1
    x = np.clip(np.asarray(x, np.float64), -1, 1)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.floor((y + 1) / 2 * mu + 0.5).astype(np.int64)


def np_decode(q, channels=256):
    mu = channels - 1
    y = 2 * np.asarray(q, np.float64) / mu - 1
    return np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu


def _random_logits(shape, seed=0):
    return np.random.default_rng(seed).normal(scale=2.0, size=shape).astype("float32")


@pytest.mark.parametrize("channels", [256, 16])
def test_encode_decode_match_standard_formula(channels):
    rng = np.random.default_rng(0)
    x = np.concatenate([[-1.0, -0.5, 0.0, 1e-4, 0.5, 1.0], rng.uniform(-1, 1, 2000), rng.normal(scale=0.02, size=2000)])
    x = np.clip(x, -1, 1).astype("float32")
    np.testing.assert_array_equal(np.asarray(_mu_law_encode(x, channels)), np_encode(x, channels))
    q = np.arange(channels)
    levels = np.asarray(_mu_law_decode(q, channels))
    np.testing.assert_allclose(levels, np_decode(q, channels), atol=1e-6)
    # Decoding then encoding is the identity on classes.
    np.testing.assert_array_equal(np.asarray(_mu_law_encode(levels, channels)), q)
    assert levels[0] == -1.0 and levels[-1] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("pwavenet_tf.audio.quantize") is None, reason="quantize not written yet")
def test_agrees_with_audio_quantize():
    quantize = pytest.importorskip("pwavenet_tf.audio.quantize")
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-1, 1, 2000), rng.normal(scale=0.02, size=2000)]).clip(-1, 1).astype("float32")
    np.testing.assert_array_equal(
        np.asarray(_mu_law_encode(x, 256)), np.asarray(quantize.mu_law_encode(x, 256)).astype(np.int64)
    )
    q = np.arange(256)
    np.testing.assert_allclose(np.asarray(_mu_law_decode(q, 256)), np.asarray(quantize.mu_law_decode(q, 256)), atol=1e-6)


def test_probabilities_sum_to_one_and_log_prob_is_log_softmax_at_class():
    logits = _random_logits((3, 50, 256))
    dist = CategoricalMuLaw(logits)
    np.testing.assert_allclose(np.exp(np.asarray(dist.log_probs())).sum(-1), 1.0, atol=1e-5)
    # Sum of exp(log_prob) over all 256 decoded levels is also 1.
    levels = np_decode(np.arange(256))
    single = CategoricalMuLaw(np.broadcast_to(logits[0, 0], (256, 256)))
    np.testing.assert_allclose(np.exp(np.asarray(single.log_prob(levels.astype("float32")))).sum(), 1.0, atol=1e-5)

    x = np.random.default_rng(2).uniform(-1, 1, (3, 50)).astype("float32")
    want = tf.nn.log_softmax(logits).numpy()
    q = np_encode(x)
    want = np.take_along_axis(want, q[..., None], -1)[..., 0]
    np.testing.assert_allclose(np.asarray(dist.log_prob(x)), want, rtol=1e-6, atol=1e-6)
    # Out-of-range audio is clipped to the edge classes.
    edge = np.asarray(CategoricalMuLaw(logits[0, :2]).log_prob(np.array([-3.0, 3.0])))
    lsm = tf.nn.log_softmax(logits[0, :2]).numpy()
    np.testing.assert_allclose(edge, [lsm[0, 0], lsm[1, 255]], rtol=1e-6)


def test_log_prob_gradient_wrt_logits():
    logits = tf.constant(_random_logits((4, 256)))
    x = np.array([-0.9, -0.01, 0.0, 0.7], "float32")
    with tf.GradientTape() as tape:
        tape.watch(logits)
        lp = tf.reduce_sum(CategoricalMuLaw(logits).log_prob(x))
    g = tape.gradient(lp, logits).numpy()
    want = np.eye(256)[np_encode(x)] - tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(g, want, atol=1e-6)


def test_sample_frequencies_and_values():
    n = 50_000
    p = np.zeros(256)
    classes = [3, 100, 128, 200, 255]
    p[classes] = [0.1, 0.2, 0.3, 0.15, 0.25]
    with np.errstate(divide="ignore"):
        logits = np.log(p).astype("float32")
    logits = np.maximum(logits, -1e9)
    dist = CategoricalMuLaw(np.broadcast_to(logits, (n, 256)))
    x = np.asarray(dist.sample(np.random.default_rng(3).uniform(size=n)))
    levels = np_decode(np.arange(256))
    # Every sample is one of the decoded levels of the support.
    q = np_encode(x)
    np.testing.assert_allclose(x, levels[q], atol=1e-6)
    assert set(np.unique(q)) == set(classes)
    freq = np.bincount(q, minlength=256)[classes] / n
    np.testing.assert_allclose(freq, p[classes], atol=0.01)  # SE <= 2.3e-3
    # Inverse CDF: u just above the first mass boundary picks the second class.
    x = np.asarray(CategoricalMuLaw(logits[None].repeat(3, 0)).sample(np.array([0.05, 0.1001, 1.0])))
    np.testing.assert_allclose(x, levels[[3, 100, 255]], atol=1e-6)


def test_mean():
    logits = _random_logits((5, 256), seed=4)
    p = tf.nn.softmax(logits).numpy().astype(np.float64)
    want = (p * np_decode(np.arange(256))).sum(-1)
    np.testing.assert_allclose(np.asarray(CategoricalMuLaw(logits).mean()), want, atol=1e-6)


def test_validation():
    with pytest.raises(ValueError, match=r"Received: logits.shape=\(2, 255\), channels=256"):
        CategoricalMuLaw(np.zeros((2, 255)))
    with pytest.raises(ValueError, match="Received: channels=1"):
        CategoricalMuLaw(np.zeros((2, 1)), channels=1)
    with pytest.raises(ValueError, match="Received: channels=0"):
        CategoricalMuLawLoss(channels=0)


def test_loss_matches_function_and_round_trips():
    logits = _random_logits((2, 40, 256), seed=5)
    audio = np.random.default_rng(6).uniform(-1, 1, (2, 40)).astype("float32")
    want = float(mu_law_nll_loss(audio, logits))
    np.testing.assert_allclose(want, -np.mean(np.asarray(CategoricalMuLaw(logits).log_prob(audio))), rtol=1e-6)
    # Uniform logits score log(256) nats = 8 bits.
    np.testing.assert_allclose(float(mu_law_nll_loss(audio, np.zeros((2, 40, 256)))), math.log(256), rtol=1e-6)

    loss = CategoricalMuLawLoss()
    np.testing.assert_allclose(float(loss(audio, logits)), want, rtol=1e-6)
    np.testing.assert_allclose(float(loss(audio[..., None], logits)), want, rtol=1e-6)
    config = loss.get_config()
    assert config["channels"] == 256
    assert CategoricalMuLawLoss.from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, CategoricalMuLawLoss) and restored.get_config() == config
    np.testing.assert_allclose(float(restored(audio, logits)), want, rtol=1e-6)
