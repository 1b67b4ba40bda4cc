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


def test_linear_interpolation_gives_a_constant_output_for_a_constant_input():
    """The frame-rate lines' cause: with learned per-position repetitions a stationary input
    gives a conditioning that repeats every hop; with "linear" it is constant (away from
    the utterance's ends, where the zero padding enters)."""
    rng = np.random.default_rng(1)
    frame = rng.normal(size=(1, 1, 7)).astype("float32")
    features = np.repeat(frame, 12, axis=1)
    for interpolation, periodic in (("none", True), ("linear", False)):
        up = ConditioningUpsampler(6, [4, 4], interpolation=interpolation)
        up.build(features.shape)
        # Trained-like weights: every position's map differs.
        for w in up.weights:
            w.assign(np.asarray(w) + rng.normal(0.0, 0.3, size=w.shape).astype("float32"))
        out = ops.convert_to_numpy(up(features))[0, 3 * 16:9 * 16]  # middle frames
        spread = float(np.max(np.std(out, axis=0)))
        assert (spread > 0.05) if periodic else (spread < 1e-5), (interpolation, spread)


def test_linear_interpolation_interpolates_between_frame_centres():
    """At identity weights (no pre-convolution mixing, positive values) each stage is plain
    centred linear interpolation: a ramp of frame values stays a ramp."""
    up = ConditioningUpsampler(1, [2, 2], pre_kernel_size=1, interpolation="linear")
    up.build((1, 6, 1))
    up.pre_conv.kernel.assign(np.ones((1, 1, 1), "float32"))
    frames = (10.0 + np.arange(6, dtype="float32"))[None, :, None]
    out = ops.convert_to_numpy(up(frames))[0, :, 0]
    # Frame i covers samples 4i..4i+3, centred at 4i + 1.5; inside, values move by 1/4 per
    # sample (the two stages compose to linear interpolation of the frame values).
    np.testing.assert_allclose(np.diff(out[4:20]), 0.25, atol=1e-5)
    np.testing.assert_allclose(out[5] + out[6], 2 * 11.0, atol=1e-5)


@pytest.mark.parametrize("interpolation", ["none", "linear"])
def test_stream_equals_call_on_the_middle_frames(interpolation):
    up = ConditioningUpsampler(6, [2, 3], interpolation=interpolation)
    full = ops.convert_to_numpy(up(F))
    half = up.look_ahead_frames
    padded = np.pad(F, [[0, 0], [half, half], [0, 0]])
    streamed = ops.convert_to_numpy(up.stream(padded))
    np.testing.assert_allclose(streamed, full, atol=1e-5)
    # A window of the middle frames with their true neighbours: those frames exactly.
    window = padded[:, 1:1 + 2 + 2 * half]
    part = ops.convert_to_numpy(up.stream(window))
    np.testing.assert_allclose(part, full[:, 6:18], atol=1e-5)


def test_linear_interpolation_config_round_trips_and_bad_values_are_named():
    up = ConditioningUpsampler(6, [2, 3], interpolation="linear")
    assert ConditioningUpsampler.from_config(up.get_config()).interpolation == "linear"
    assert up.look_ahead_frames == 1 + 2
    with pytest.raises(ValueError, match="interpolation"):
        ConditioningUpsampler(6, [2], interpolation="cubic")
