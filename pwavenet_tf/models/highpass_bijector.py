"""A TFP bijector for the student's output high-pass (glue: the math is `CausalHighpass`)."""

import tensorflow as tf
import tensorflow_probability as tfp

from pwavenet_tf.layers.causal_highpass import CausalHighpass

tfb = tfp.bijectors


class CausalHighpassBijector(tfb.Bijector):
    """y = x + shift(x_<t) (`CausalHighpass`): volume-preserving, event shape `[time]`.

    - `forward(x)`: one parallel pass.
    - `inverse(y)`: sequential, like `IAFBijector`'s: x = y - shift(x) solved by T
      fixed-point passes (after pass k the prefix x_0..x_k is exact); short sequences.
    - `forward_log_det_jacobian`: 0 (unit lower-triangular Jacobian).
    """

    def __init__(self, highpass, validate_args=False, name="causal_highpass"):
        parameters = dict(locals())
        if not isinstance(highpass, CausalHighpass):
            raise ValueError(f"`highpass` must be a CausalHighpass layer. Received: {highpass!r}")
        with tf.name_scope(name) as name:
            self._highpass = highpass
            super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True,
                             validate_args=validate_args, parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _forward(self, x):
        return self._highpass(tf.convert_to_tensor(x, tf.float32))

    def _inverse(self, y):
        y = tf.convert_to_tensor(y, tf.float32)

        def body(k, x):
            return k + 1, y - self._highpass.shift(x)

        _, x = tf.while_loop(lambda k, x: k < tf.shape(y)[1], body,
                             (tf.constant(0), tf.zeros_like(y)))
        return x

    def _forward_log_det_jacobian(self, x):
        return tf.zeros(tf.shape(x)[:-1], tf.float32)
