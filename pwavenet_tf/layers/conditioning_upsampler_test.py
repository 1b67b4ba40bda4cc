import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from pwavenet_tf.layers.conditioning_upsampler import ConditioningUpsampler
from pwavenet_tf.testing.test_case import run_layer_test

F = np.random.default_rng(0).normal(size=(2, 5, 7)).astype("float32")


def test_standard_layer_checks():
    run_layer_test(ConditioningUpsampler, {"channels": 6, "upsample_factors": [2, 3]}, F,
                   expected_output_shape=(2, 30, 6))


def test_starts_as_nearest_neighbour_repetition():
    up = ConditioningUpsampler(6, [2, 3])
    out = ops.convert_to_numpy(up(F))
    pre = ops.convert_to_numpy(up.pre_conv(F))
    pre = np.where(pre > 0, pre, 0.4 * pre)
    pre = np.where(pre > 0, pre, 0.4 * pre)  # two leaky ReLUs
    np.testing.assert_allclose(out, np.repeat(pre, 6, axis=1), atol=1e-5)


def test_does_not_saturate():
    """The output's sensitivity to the conditioning stays large even for large inputs."""
    up = ConditioningUpsampler(6, [4, 4])
    for scale in (1.0, 100.0):
        x = tf.constant(F * scale)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = up(x)
        jac = tape.gradient(y, x, output_gradients=tf.ones_like(y))
        # Every frame's features reach 16 outputs with slope >= 0.4^2 each.
        assert float(tf.reduce_min(tf.reduce_sum(tf.abs(jac), -1))) > 0.0
        rel = float(tf.math.reduce_std(y)) / float(tf.math.reduce_std(x))
        assert rel > 0.05, f"output collapsed at input scale {scale}: std ratio {rel}"


def test_dynamic_length_in_a_functional_model():
    inp = keras.Input((None, 7))
    model = keras.Model(inp, ConditioningUpsampler(3, [4, 2])(inp))
    assert tuple(model(F[:, :3]).shape) == (2, 24, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="upsample_factors"):
        ConditioningUpsampler(3, [])
    with pytest.raises(ValueError, match="pre_kernel_size"):
        ConditioningUpsampler(3, [2], pre_kernel_size=2)
