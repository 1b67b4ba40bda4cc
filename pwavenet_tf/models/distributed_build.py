"""Fixes for `model.fit` under `MultiWorkerMirroredStrategy` (Keras 3.8, TF backend).

1. Before training under a strategy, Keras builds the model symbolically from one batch,
   which it first reduces across replicas with `strategy.reduce("MEAN", batch)`. With
   `MultiWorkerMirroredStrategy` that reduce fails on a batch that is a dict of tensors
   ("Attempt to convert a value ({'audio': PerReplica ...}) ... to a Tensor"). Only the
   batch's shapes and dtypes matter for the symbolic build, so this mixin hands Keras one
   replica's local batch instead of a reduced one.
2. Keras reduces the step's logs across workers with `strategy.reduce("MEAN", v, axis=0)`,
   which fails for the scalar logs every model returns ("Invalid reduction dimension 0 for
   input with 0 dimensions"). Under that strategy the mixin returns each scalar log as a
   1-element vector, which the reduce turns back into the cross-worker mean scalar.

The private hooks are those of the pinned Keras (`keras>=3.4,<3.9`); the multi-worker
test (`tests/multi_worker_test.py`) exercises both.
"""

import tensorflow as tf
from keras import tree


def logs_for_reduction(logs, strategy):
    """Scalar logs as 1-element vectors under `MultiWorkerMirroredStrategy` (see 2.)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return tree.map_structure(
        lambda v: tf.reshape(v, [1]) if hasattr(v, "shape") and v.shape.rank == 0 else v, logs)


class DistributedBuildMixin:
    """Mix into a `keras.Model` (before it) that is trained with `fit` under any strategy."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and getattr(self, "_distribute_strategy", None) is not None:
            strategy = self._distribute_strategy
            for _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: (strategy.experimental_local_results(v)[0]
                               if isinstance(v, tf.distribute.DistributedValues) else v),
                    batch)
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        return logs_for_reduction(super().train_step(data), self.distribute_strategy)

    def test_step(self, data):
        return logs_for_reduction(super().test_step(data), self.distribute_strategy)
