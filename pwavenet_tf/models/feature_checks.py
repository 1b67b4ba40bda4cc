"""Validation of conditioning features at the generation edge (eager inputs)."""

import numpy as np
import tensorflow as tf


def validate_features(features, conditioning_dim):
    """Returns `features` as a float32 tensor; raises ValueError naming what is wrong.

    Checks rank 3 `[batch, frames, conditioning_dim]`, at least one frame, and that every
    value is finite (NaN conditioning would silently produce NaN audio).
    """
    features = tf.convert_to_tensor(features, tf.float32)
    if features.shape.rank != 3 or features.shape[-1] != conditioning_dim:
        raise ValueError(
            f"`features` must be [batch, frames, {conditioning_dim}]. "
            f"Received: features.shape={features.shape}"
        )
    if features.shape[1] == 0 or features.shape[0] == 0:
        raise ValueError(f"`features` is empty. Received: features.shape={features.shape}")
    if tf.executing_eagerly() and not np.all(np.isfinite(features.numpy())):
        raise ValueError("`features` contains NaN or Inf values.")
    return features
