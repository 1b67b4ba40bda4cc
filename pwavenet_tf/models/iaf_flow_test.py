import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from pwavenet_tf.models.iaf_flow import IAFFlow, soft_clamp, soft_clamp_inverse
from pwavenet_tf.testing.test_case import run_layer_test

rng = np.random.default_rng(0)
Z = rng.logistic(size=(2, 16)).astype("float32")
C = rng.normal(size=(2, 16, 5)).astype("float32")
G = rng.normal(size=(2, 3)).astype("float32")
ARGS = {"num_layers": 2, "channels": 8, "dilation_cycle": 2, "initial_log_scale": -0.5}


def _randomize_output(flow, seed=1):
    """The output kernel starts at zero; give it values so that mu, log_s depend on z."""
    r = np.random.default_rng(seed)
    flow.output_proj.kernel.assign(r.normal(0, 0.3, size=flow.output_proj.kernel.shape))


def _np(x):
    return ops.convert_to_numpy(x)


def test_standard_layer_checks():
    run_layer_test(IAFFlow, ARGS, {"z": Z, "conditioning": C},
                   expected_output_shape=[(2, 16), (2, 16)])


def test_starts_as_a_pure_scale():
    mu, log_s = IAFFlow(**ARGS)(Z, C, G)
    np.testing.assert_array_equal(_np(mu), 0.0)
    np.testing.assert_allclose(_np(log_s), -0.5, atol=1e-5)


def test_strictly_causal_and_receptive_field():
    # dilations 1, 2, 1, 2 with k = 3: the stack spans 2 * 6 + 1 = 13 past samples of z.
    flow = IAFFlow(**dict(ARGS, num_layers=4))
    assert flow.receptive_field == 13
    z = rng.logistic(size=(2, 32)).astype("float32")
    c = rng.normal(size=(2, 32, 5)).astype("float32")
    flow(z, c)
    _randomize_output(flow)
    a = [_np(o) for o in flow(z, c)]
    z2 = z.copy()
    z2[:, 5] += 1.0
    b = [_np(o) for o in flow(z2, c)]
    for oa, ob in zip(a, b):
        np.testing.assert_array_equal(oa[:, :6], ob[:, :6])  # t <= 5 never sees z_5
        assert np.abs(oa[:, 6] - ob[:, 6]).max() > 1e-6
        assert np.abs(oa[:, 5 + 13] - ob[:, 5 + 13]).max() > 1e-7
        np.testing.assert_array_equal(oa[:, 5 + 14:], ob[:, 5 + 14:])  # out of reach
    # The conditioning at t is seen at t (it is known ahead of time).
    c2 = c.copy()
    c2[:, 5] += 1.0
    d = _np(flow(z, c2)[0])
    np.testing.assert_array_equal(a[0][:, :5], d[:, :5])
    assert np.abs(a[0][:, 5] - d[:, 5]).max() > 1e-6


def test_global_conditioning_is_used():
    flow = IAFFlow(**ARGS)
    flow(Z, C, G)
    _randomize_output(flow)
    a, b = _np(flow(Z, C, G)[0]), _np(flow(Z, C, G + 1.0)[0])
    assert np.abs(a - b).mean() > 1e-4


def test_soft_clamp_is_bounded_smooth_and_near_identity_inside():
    x = tf.constant(np.linspace(-50, 50, 2001), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = soft_clamp(x, -7.0, 3.0)
    grad = _np(tape.gradient(y, x))
    y = _np(y)
    assert y.min() >= -7.0 - np.log1p(np.exp(-10.0)) - 1e-6 and y.max() <= 3.0
    assert np.all(np.diff(y) >= 0) and grad.min() > 0 and grad.max() <= 1.0 + 1e-6
    mid = np.abs(_np(x) + 2.0) <= 2.0  # [-4, 0] inside (-7, 3)
    np.testing.assert_allclose(y[mid], _np(x)[mid], atol=0.06)
    for target in (-6.0, -0.75, 0.0, 2.5):
        raw = soft_clamp_inverse(target, -7.0, 3.0)
        assert abs(float(soft_clamp(tf.constant(raw, tf.float64), -7.0, 3.0)) - target) < 1e-9


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_layers"):
        IAFFlow(0)
    with pytest.raises(ValueError, match="log_scale_min"):
        IAFFlow(2, log_scale_min=1.0, log_scale_max=0.0)
    with pytest.raises(ValueError, match="initial_log_scale"):
        IAFFlow(2, initial_log_scale=5.0)
    with pytest.raises(ValueError, match="z.shape"):
        IAFFlow(**ARGS)(Z[..., None], C)
    with pytest.raises(ValueError, match="timesteps"):
        IAFFlow(**ARGS)(Z, C[:, :8])
