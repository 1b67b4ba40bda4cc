"""A TFP bijector for one IAF flow (glue: the math lives in the Keras `IAFFlow` layer)."""

import tensorflow as tf
import tensorflow_probability as tfp

from pwavenet_tf.models.iaf_flow import IAFFlow

tfb = tfp.bijectors


class IAFBijector(tfb.Bijector):
    """x = z * exp(log_s(z_<t)) + mu(z_<t), with (mu, log_s) from an `IAFFlow`.

    Event shape `[time]` (`forward_min_event_ndims=1`); inputs are `[batch, time]` and
    match the batch and length of `conditioning` `[batch, time, C]`. Sample shapes beyond
    the batch (e.g. `dist.sample(4)`) are not supported: draw `[batch, time]` only.

    - `forward(z)`: one parallel pass of the flow.
    - `inverse(x)`: sequential. z_t = (x_t - mu_t) / s_t needs z_<t, so the flow is run
      T times (a `tf.while_loop`): pass k re-derives every z from the previous estimate,
      and after pass k the prefix z_0..z_k is exact. O(T) passes of O(T) work each: for
      short sequences (tests, likelihood checks), not for training. It is exact in exact
      arithmetic, but float rounding grows by roughly |d mu_t / d z_<t| / s_t per step, so
      with very small scales over long sequences it becomes ill-conditioned.
    - `forward_log_det_jacobian(z)`: sum_t log_s_t over the time axis (the Jacobian dx/dz
      is lower triangular with diagonal s). The inverse log-det is TFP's
      `-fldj(inverse(x))` (the inverse is cached, so it is not recomputed).

    The variables stay in the Keras layer (TFP does not track Keras 3 variables); this
    object only holds a reference to it and to the conditioning tensors, so build it
    where it is used (e.g. inside a training step) and let it go afterwards.

    Args:
        flow: an `IAFFlow` layer.
        conditioning: upsampled conditioning `[batch, time, C]`.
        global_conditioning: optional `[batch, G]` (needed iff the flow was built with it).
        validate_args: add runtime checks of dynamic shapes.
        name: name of the bijector.
    """

    def __init__(self, flow, conditioning, global_conditioning=None, validate_args=False,
                 name="iaf_bijector"):
        parameters = dict(locals())
        if not isinstance(flow, IAFFlow):
            raise ValueError(f"`flow` must be an IAFFlow layer. Received: flow={flow!r}")
        with tf.name_scope(name) as name:
            conditioning = tf.convert_to_tensor(conditioning)
            if conditioning.shape.rank != 3:
                raise ValueError(
                    "`conditioning` must be [batch, time, channels]. "
                    f"Received: conditioning.shape={conditioning.shape}"
                )
            if global_conditioning is not None:
                global_conditioning = tf.convert_to_tensor(global_conditioning)
                if global_conditioning.shape.rank != 2:
                    raise ValueError(
                        "`global_conditioning` must be [batch, channels]. "
                        f"Received: global_conditioning.shape={global_conditioning.shape}"
                    )
            self._flow = flow
            self._conditioning = conditioning
            self._global_conditioning = global_conditioning
            super().__init__(forward_min_event_ndims=1, validate_args=validate_args,
                             parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        # The conditioning is not a batch parameter of the bijector: its batch is the
        # base distribution's. An empty dict gives the bijector a scalar batch shape.
        return {}

    @property
    def flow(self):
        return self._flow

    @property
    def conditioning(self):
        return self._conditioning

    @property
    def global_conditioning(self):
        return self._global_conditioning

    def _checked(self, x, name):
        x = tf.convert_to_tensor(x, tf.float32)
        if x.shape.rank != 2:
            raise ValueError(
                f"`{name}` must be [batch, time] (no extra sample dimensions). "
                f"Received: {name}.shape={x.shape}"
            )
        cond = self._conditioning.shape
        for axis, what in ((0, "batch size"), (1, "length")):
            if x.shape[axis] is not None and cond[axis] is not None and x.shape[axis] != cond[axis]:
                raise ValueError(
                    f"The {what} of `{name}` ({x.shape[axis]}) does not match the conditioning's "
                    f"({cond[axis]}). Received: {name}.shape={x.shape}, "
                    f"conditioning.shape={cond}"
                )
        if self.validate_args:
            with tf.control_dependencies([
                tf.debugging.assert_equal(
                    tf.shape(x), tf.shape(self._conditioning)[:2],
                    message=f"`{name}` [batch, time] must match the conditioning's",
                )
            ]):
                x = tf.identity(x)
        return x

    def _params(self, z):
        return self._flow(z, self._conditioning, self._global_conditioning)

    def _forward(self, z):
        z = self._checked(z, "z")
        mu, log_s = self._params(z)
        return z * tf.exp(log_s) + mu

    def _inverse(self, x):
        x = self._checked(x, "x")

        def body(k, z):
            mu, log_s = self._params(z)
            return k + 1, (x - mu) * tf.exp(-log_s)

        _, z = tf.while_loop(lambda k, z: k < tf.shape(x)[1], body,
                             (tf.constant(0), tf.zeros_like(x)))
        return z

    def _forward_log_det_jacobian(self, z):
        z = self._checked(z, "z")
        _, log_s = self._params(z)
        return tf.reduce_sum(log_s, axis=-1)
