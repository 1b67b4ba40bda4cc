import numpy as np
import pytest
from keras import ops

from pwavenet_tf.layers.causal_conv1d import CausalConv1D, receptive_field
from pwavenet_tf.testing.test_case import run_layer_test


def test_standard_layer_checks():
    x = np.random.default_rng(0).normal(size=(2, 17, 3)).astype("float32")
    run_layer_test(CausalConv1D, {"filters": 4, "kernel_size": 3, "dilation_rate": 2}, x,
                   expected_output_shape=(2, 17, 4), expected_num_trainable_weights=2)


@pytest.mark.parametrize("k,d", [(2, 1), (2, 4), (3, 1), (3, 8), (1, 1)])
def test_causal_and_step_equals_full(k, d):
    rng = np.random.default_rng(k * 10 + d)
    x = rng.normal(size=(2, 40, 3)).astype("float32")
    layer = CausalConv1D(5, k, d, bias_initializer="random_normal")
    full = ops.convert_to_numpy(layer(x))
    # Causality: perturbing input t changes no output before t.
    x2 = x.copy()
    x2[:, 25] += 1.0
    full2 = ops.convert_to_numpy(layer(x2))
    np.testing.assert_array_equal(full[:, :25], full2[:, :25])
    assert np.abs(full[:, 25] - full2[:, 25]).max() > 1e-3
    # The one-step mode reproduces the full pass.
    state = layer.initial_state(2)
    assert tuple(state.shape) == (2, (k - 1) * d, 3)
    steps = []
    for t in range(40):
        y, state = layer.step(x[:, t], state)
        steps.append(ops.convert_to_numpy(y))
    np.testing.assert_allclose(np.stack(steps, 1), full, atol=1e-5)


def test_matches_numpy_reference():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 12, 2)).astype("float32")
    layer = CausalConv1D(3, 3, 2, use_bias=False)
    y = ops.convert_to_numpy(layer(x))
    w = ops.convert_to_numpy(layer.kernel)
    xp = np.pad(x, [(0, 0), (4, 0), (0, 0)])
    ref = np.zeros((1, 12, 3), "float32")
    for t in range(12):
        for j in range(3):
            ref[0, t] += xp[0, t + j * 2] @ w[j]
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_receptive_field():
    assert receptive_field(3, [2**i for i in range(10)] * 3) == 6139  # the paper's teacher
    assert receptive_field(2, [1, 2, 4, 8]) == 16


def test_bad_arguments():
    with pytest.raises(ValueError, match="kernel_size"):
        CausalConv1D(4, 0)
    with pytest.raises(ValueError, match="dilation_rate"):
        CausalConv1D(4, 2, dilation_rate=-1)


@pytest.mark.parametrize("k,d", [(2, 1), (2, 4), (3, 1), (3, 8), (1, 1)])
def test_ring_buffer_step_equals_full(k, d):
    """With a position the queue is a ring buffer written in place; same outputs."""
    rng = np.random.default_rng(k * 10 + d)
    x = rng.normal(size=(2, 40, 3)).astype("float32")
    layer = CausalConv1D(5, k, d, bias_initializer="random_normal")
    full = ops.convert_to_numpy(layer(x))
    state = layer.initial_state(2)
    steps = []
    for t in range(40):
        y, state = layer.step(x[:, t], state, position=ops.convert_to_tensor(t, "int32"))
        assert tuple(state.shape) == (2, (k - 1) * d, 3)
        steps.append(ops.convert_to_numpy(y))
    np.testing.assert_allclose(np.stack(steps, 1), full, atol=1e-5)
    if k > 1:
        # The ring holds the last (k-1)*d inputs, x_t at slot t mod queue.
        q = (k - 1) * d
        expected = np.stack([x[:, t] for t in range(40 - q, 40)], 1)
        order = [t % q for t in range(40 - q, 40)]
        np.testing.assert_array_equal(ops.convert_to_numpy(state)[:, order], expected)


def test_step_kernel_is_the_kernel_flattened_oldest_tap_first():
    layer = CausalConv1D(4, 3, 2)
    layer.build((None, None, 3))
    w = ops.convert_to_numpy(layer.kernel)
    flat = ops.convert_to_numpy(layer.step_kernel())
    assert flat.shape == (9, 4)
    np.testing.assert_array_equal(flat[3:6], w[1])
    assert len(layer.weights) == 2
