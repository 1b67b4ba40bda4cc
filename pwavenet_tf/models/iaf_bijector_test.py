import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from pwavenet_tf.models.iaf_bijector import IAFBijector
from pwavenet_tf.models.iaf_flow import IAFFlow

rng = np.random.default_rng(0)
Z = rng.logistic(size=(2, 20)).astype("float32")
C = rng.normal(size=(2, 20, 5)).astype("float32")
G = rng.normal(size=(2, 3)).astype("float32")


def _flow(global_conditioning=None, seed=1):
    keras.utils.set_random_seed(seed)
    flow = IAFFlow(3, channels=8, dilation_cycle=2, initial_log_scale=-0.5)
    flow(Z, C, global_conditioning)
    r = np.random.default_rng(seed)
    flow.output_proj.kernel.assign(r.normal(0, 0.3, size=flow.output_proj.kernel.shape))
    return flow


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("use_global", [False, True])
def test_forward_inverse_and_log_det(use_global):
    g = G if use_global else None
    flow = _flow(g)
    bij = IAFBijector(flow, C, g)
    mu, log_s = (_np(v) for v in flow(Z, C, g))
    x = _np(bij.forward(Z))
    np.testing.assert_allclose(x, Z * np.exp(log_s) + mu, atol=1e-6)
    # Sequential inverse of the parallel forward, and the other way round.
    np.testing.assert_allclose(_np(bij.inverse(x)), Z, atol=1e-4)
    x_new = rng.normal(0, 0.3, size=Z.shape).astype("float32")
    np.testing.assert_allclose(_np(bij.forward(bij.inverse(x_new))), x_new, atol=1e-4)
    fldj = _np(bij.forward_log_det_jacobian(Z, event_ndims=1))
    np.testing.assert_allclose(fldj, log_s.sum(-1), atol=1e-4)
    assert fldj.shape == (2,)
    ildj = _np(bij.inverse_log_det_jacobian(tf.constant(x), event_ndims=1))
    np.testing.assert_allclose(ildj, -fldj, atol=1e-4)


def test_inverse_in_a_tf_function():
    flow = _flow()
    x = _np(IAFBijector(flow, C).forward(Z))

    @tf.function
    def inv(x):
        return IAFBijector(flow, C).inverse(x)

    np.testing.assert_allclose(_np(inv(tf.constant(x))), Z, atol=1e-4)


def test_misuse_raises_value_error():
    flow = _flow()
    with pytest.raises(ValueError, match="IAFFlow"):
        IAFBijector("not a flow", C)
    with pytest.raises(ValueError, match="conditioning.shape"):
        IAFBijector(flow, C[0])
    bij = IAFBijector(flow, C)
    with pytest.raises(ValueError, match="z.shape"):
        bij.forward(Z[None])
    with pytest.raises(ValueError, match="length of `z` \\(12\\).*conditioning's \\(20\\)"):
        bij.forward(Z[:, :12])
    with pytest.raises(ValueError, match="length of `x`"):
        bij.inverse(Z[:, :12])
    with pytest.raises(ValueError, match="batch size"):
        bij.forward(Z[:1])
