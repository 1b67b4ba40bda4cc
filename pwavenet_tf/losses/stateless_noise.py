"""Training noise keyed to (seed, stream, step, example): exact resume and per-replica draws.

Every random number a training step uses is a pure function of the run's seed, a stream id
(student noise, KL draws, ...), the global step and the example's index in the *global*
batch. So:

- a run resumed from a checkpoint at step s draws exactly what an uninterrupted run draws
  at step s (nothing depends on how many draws happened before);
- under `tf.distribute`, each replica draws different noise for its own examples, and the
  noise of global example i does not depend on how the batch is split across replicas
  (two replicas of 2 examples draw what one replica of 4 draws).

Stateless TensorFlow RNG (Philox) is the backend edge here: `keras.random` takes only int
or `SeedGenerator` seeds, not a seed computed from the step inside the graph.
"""

import tensorflow as tf

# Stream ids: one per independent use of noise in a step.
STUDENT_NOISE = 1
KL_DRAWS = 2

# Seeds are int64 pairs (seed * _STREAMS + stream, step * _MAX_BATCH + example).
_STREAMS = 1 << 8
_MAX_BATCH = 1 << 24
_EPS = 1e-5


def replica_index():
    """This replica's id in its sync group (0 outside a `tf.distribute` replica context)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return 0
    return ctx.replica_id_in_sync_group


def replica_count():
    """Replicas in sync under the current `tf.distribute` strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def example_seeds(seed, stream, step, batch_size):
    """`[batch_size, 2]` int64 Philox seeds of this replica's examples at `step`.

    The examples of replica r are global examples `r * batch_size + j`.
    """
    step = tf.cast(step, tf.int64)
    first = tf.cast(replica_index(), tf.int64) * tf.cast(batch_size, tf.int64)
    index = first + tf.range(tf.cast(batch_size, tf.int64), dtype=tf.int64)
    high = tf.fill(tf.shape(index), tf.constant(int(seed) * _STREAMS + int(stream), tf.int64))
    return tf.stack([high, step * _MAX_BATCH + index], axis=-1)


def logistic_noise_per_example(seeds, shape, dtype="float32"):
    """Logistic(0, 1) noise `[batch] + shape`, example b drawn from `seeds[b]`.

    `log u - log(1 - u)`, u ~ U(eps, 1 - eps) as in `kl_divergence.logistic_noise`.
    """
    shape = tf.convert_to_tensor(shape, tf.int32)

    def one(s):
        u = tf.random.stateless_uniform(shape, seed=s, minval=_EPS, maxval=1.0 - _EPS,
                                        dtype=tf.float32)
        return tf.math.log(u) - tf.math.log1p(-u)

    noise = tf.map_fn(one, seeds, fn_output_signature=tf.float32)
    return tf.cast(noise, dtype)
