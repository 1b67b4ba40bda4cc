"""Correct Keras metrics under `tf.distribute` with more than one replica (Keras < 3.10).

Keras 3's TensorFlow variable implements `assign_add(v)` as `assign(self + v)`. A metric's
`total` and `count` are mirrored variables with SUM aggregation, and a SUM-aggregated
`assign` in replica context sums the ASSIGNED VALUES over the R replicas, so each update
gives `R * old + sum(v)` instead of `old + sum(v)`: every earlier step of the epoch is
weighted R times more per step (the epoch's running mean of the loss over-weights its
first steps, and over long epochs it overflows to NaN; keras-team/keras#21467, fixed in
Keras 3.10). Measured here on two logical CPU replicas of the tiny teacher: after 2 steps
the logged mean loss was 9.3801 against 9.3139 on one device, with the weights equal to
6e-7; over a 20-step epoch on two worker processes the published `train_bits_per_sample`
was 13.56 against 13.19. Training itself was never affected (the optimizer updates
through TensorFlow's own `assign_add`).

`install()` makes the TensorFlow backend's `Variable.assign_add` / `assign_sub` use
TensorFlow's own (`tf.Variable.assign_add`, which a strategy reduces as a delta), as the
optimizer already does; on one device the result is the same. Called by `make_strategy`,
so both training stages get it before any metric is created.
"""

import keras
import tensorflow as tf

FIXED_IN = (3, 10)


def _keras_version():
    return tuple(int(p) for p in keras.version().split(".")[:2])


def needed():
    """Whether this Keras has the replica-summed `assign_add`."""
    return _keras_version() < FIXED_IN


def install():
    """Patches the TF backend's `Variable.assign_add` / `assign_sub` (once; idempotent)."""
    if not needed():
        return False
    from keras.src.backend.common.stateless_scope import in_stateless_scope
    from keras.src.backend.tensorflow.core import Variable

    if getattr(Variable, "_pwavenet_replica_fix", False):
        return True
    original_add, original_sub = Variable.assign_add, Variable.assign_sub

    def native(update, original):
        def method(self, value):
            if in_stateless_scope() or self._value is None:
                return original(self, value)
            return update(self._value, tf.cast(value, self._value.dtype))

        return method

    Variable.assign_add = native(lambda v, x: v.assign_add(x), original_add)
    Variable.assign_sub = native(lambda v, x: v.assign_sub(x), original_sub)
    Variable._pwavenet_replica_fix = True
    return True
