"""Least-squares GAN and feature-matching losses against numbers worked out by hand."""

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.losses.adversarial_loss import (
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
)

REAL = np.array([[1.0, 0.0], [2.0, 1.0]], "float32")  # (D-1)^2: 0, 1, 1, 0 -> mean 0.5
FAKE = np.array([[0.0, 1.0], [-1.0, 2.0]], "float32")  # D^2: 0, 1, 1, 4 -> mean 1.5
#                                                  (D-1)^2: 1, 0, 4, 1 -> mean 1.5


def test_discriminator_loss():
    assert float(discriminator_loss(REAL, FAKE)) == pytest.approx(0.5 + 1.5)
    # A perfect discriminator (1 on real, 0 on fake) has loss 0; the reverse has loss 2.
    ones, zeros = np.ones((2, 3), "float32"), np.zeros((2, 3), "float32")
    assert float(discriminator_loss(ones, zeros)) == 0.0
    assert float(discriminator_loss(zeros, ones)) == pytest.approx(2.0)


def test_generator_loss():
    assert float(generator_loss(FAKE)) == pytest.approx(1.5)
    assert float(generator_loss(np.ones((1, 4), "float32"))) == 0.0


def test_feature_matching_is_the_l1_averaged_over_layers():
    real = [np.array([[[1.0], [2.0]]], "float32"), np.zeros((1, 2, 2), "float32")]
    fake = [np.array([[[0.0], [4.0]]], "float32"),  # |diff| 1, 2 -> 1.5
            np.array([[[1.0, -1.0], [0.5, 0.5]]], "float32")]  # |diff| mean 0.75
    assert float(feature_matching_loss(real, fake)) == pytest.approx((1.5 + 0.75) / 2)
    assert float(feature_matching_loss(real, real)) == 0.0


def test_several_sub_discriminators_are_averaged():
    assert float(discriminator_loss([REAL, REAL], [FAKE, np.zeros_like(FAKE)])) == \
        pytest.approx(((0.5 + 1.5) + (0.5 + 0.0)) / 2)
    assert float(generator_loss([FAKE, np.ones_like(FAKE)])) == pytest.approx(0.75)
    a, b = np.zeros((1, 2, 1), "float32"), np.ones((1, 2, 1), "float32")
    # Three feature maps in all (1 + 2): mean of 1, 0, 1.
    assert float(feature_matching_loss([[a], [a, a]], [[b], [a, b]])) == pytest.approx(2 / 3)


def test_gradients():
    """d/dD mean((D-1)^2) = 2 (D-1) / n; d/dF mean|F_r - F_f| = -sign(F_r - F_f) / n / L."""
    fake = tf.Variable(FAKE)
    with tf.GradientTape() as tape:
        loss = generator_loss(fake)
    np.testing.assert_allclose(tape.gradient(loss, fake), 2 * (FAKE - 1) / 4, rtol=1e-6)
    f = tf.Variable(np.array([[[0.0], [4.0]]], "float32"))
    with tf.GradientTape() as tape:
        loss = feature_matching_loss([np.array([[[1.0], [2.0]]], "float32")], [f])
    np.testing.assert_allclose(tape.gradient(loss, f), [[[-0.5], [0.5]]], rtol=1e-6)


def test_half_precision_is_computed_in_float32():
    loss = discriminator_loss(tf.constant(REAL, "float16"), tf.constant(FAKE, "bfloat16"))
    assert loss.dtype == "float32" and float(loss) == pytest.approx(2.0)


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="same discriminators"):
        discriminator_loss([REAL, REAL], [FAKE])
    with pytest.raises(ValueError, match="same, non-zero number"):
        feature_matching_loss([REAL], [REAL, REAL])
    with pytest.raises(ValueError, match="differ in shape"):
        feature_matching_loss([np.zeros((1, 2, 3), "float32")], [np.zeros((1, 2, 4), "float32")])
    with pytest.raises(ValueError, match="empty"):
        generator_loss([])
