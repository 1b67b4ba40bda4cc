import numpy as np
import pytest
from keras import ops

from pwavenet_tf.layers.residual_block import ResidualBlock
from pwavenet_tf.testing.test_case import run_layer_test

rng = np.random.default_rng(0)
X = rng.normal(size=(2, 20, 8)).astype("float32")
C = rng.normal(size=(2, 20, 5)).astype("float32")
G = rng.normal(size=(2, 3)).astype("float32")
ARGS = {"residual_channels": 8, "gate_channels": 6, "skip_channels": 4, "kernel_size": 3,
        "dilation_rate": 2}


def test_standard_layer_checks_with_skip_and_global():
    run_layer_test(ResidualBlock, ARGS, {"x": X, "conditioning": C, "global_conditioning": G},
                   expected_output_shape=[(2, 20, 8), (2, 20, 4)])


def test_standard_layer_checks_without_skip():
    run_layer_test(ResidualBlock, {**ARGS, "skip_channels": 0}, {"x": X, "conditioning": C},
                   expected_output_shape=(2, 20, 8))


def test_step_equals_full_with_global_conditioning():
    block = ResidualBlock(**ARGS)
    res, skip = block(X, C, G)
    state = block.initial_state(2)
    for t in range(20):
        (r, s), state = block.step(X[:, t], C[:, t], G, state)
        np.testing.assert_allclose(ops.convert_to_numpy(r), ops.convert_to_numpy(res)[:, t],
                                   atol=1e-5)
        np.testing.assert_allclose(ops.convert_to_numpy(s), ops.convert_to_numpy(skip)[:, t],
                                   atol=1e-5)


def test_uses_conditioning():
    block = ResidualBlock(**ARGS)
    a = ops.convert_to_numpy(block(X, C, G)[0])
    b = ops.convert_to_numpy(block(X, C + 1.0, G)[0])
    c = ops.convert_to_numpy(block(X, C, G + 1.0)[0])
    assert np.abs(a - b).mean() > 1e-3 and np.abs(a - c).mean() > 1e-3


def test_bad_arguments():
    with pytest.raises(ValueError, match="gate_channels"):
        ResidualBlock(8, 5, 4)
    with pytest.raises(ValueError, match="residual_channels"):
        ResidualBlock(4, 6, 4)(X, C)


def test_skip_only_block_passes_the_input_through():
    block = ResidualBlock(**ARGS, use_residual=False)
    res, skip = block(X, C, G)
    np.testing.assert_array_equal(ops.convert_to_numpy(res), X)
    assert tuple(skip.shape) == (2, 20, 4)
    assert not any("residual_proj" in w.path for w in block.weights)
    with pytest.raises(ValueError, match="residual or a skip"):
        ResidualBlock(8, 6, 0, use_residual=False)


@pytest.mark.parametrize("use_residual", [True, False])
def test_ring_buffer_step_with_fused_projections_equals_full(use_residual):
    block = ResidualBlock(**ARGS, use_residual=use_residual)
    block(X, C, G)
    for w in block.weights:
        if w.path.endswith("bias"):
            w.assign(np.random.default_rng(2).normal(0, 0.3, size=w.shape))
    res, skip = (ops.convert_to_numpy(v) for v in block(X, C, G))
    paths = sorted(w.path for w in block.weights)
    weights = block.step_weights()
    # Residual and skip projections side by side: one matmul for both.
    assert tuple(weights["out_kernel"].shape) == (3, (8 if use_residual else 0) + 4)
    state = block.initial_state(2)
    for t in range(20):
        (r, s), state = block.step(X[:, t], C[:, t], G, state, position=t)
        np.testing.assert_allclose(ops.convert_to_numpy(r), res[:, t], atol=1e-5)
        np.testing.assert_allclose(ops.convert_to_numpy(s), skip[:, t], atol=1e-5)
    assert sorted(w.path for w in block.weights) == paths  # fused at call time only
