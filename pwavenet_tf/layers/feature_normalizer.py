"""Per-dimension feature normalisation with the dataset statistics stored as weights."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class FeatureNormalizer(keras.layers.Layer):
    """`(features - mean) / std` with `mean`, `std` non-trainable weights.

    The statistics are computed once per dataset (`pwavenet_tf.audio.feature_stats`) and
    then travel with the model's weights and checkpoints, so training, generation and the
    exported SavedModel normalise identically. Also validates that the input is finite.

    Args:
        feature_dim: width of the feature vectors.
        mean, std: optional initial statistics (lists of `feature_dim` floats).
    """

    def __init__(self, feature_dim, mean=None, std=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(feature_dim, int) or feature_dim < 1:
            raise ValueError(f"`feature_dim` must be a positive integer. Received: {feature_dim!r}")
        for name, v in (("mean", mean), ("std", std)):
            if v is not None and len(v) != feature_dim:
                raise ValueError(
                    f"`{name}` must have feature_dim={feature_dim} entries. Received: {len(v)}"
                )
        if std is not None and min(std) <= 0:
            raise ValueError(f"`std` must be positive. Received: min(std)={min(std)}")
        self.feature_dim = feature_dim
        self._init_mean = None if mean is None else [float(m) for m in mean]
        self._init_std = None if std is None else [float(s) for s in std]

    def build(self, input_shape):
        if input_shape[-1] != self.feature_dim:
            raise ValueError(
                f"Features have {input_shape[-1]} dims but the model expects "
                f"feature_dim={self.feature_dim}. Received: shape={input_shape}"
            )
        mean = np.zeros(self.feature_dim) if self._init_mean is None else self._init_mean
        std = np.ones(self.feature_dim) if self._init_std is None else self._init_std
        self.mean = self.add_weight(name="mean", shape=(self.feature_dim,), trainable=False,
                                    initializer=keras.initializers.Constant(np.asarray(mean)))
        self.std = self.add_weight(name="std", shape=(self.feature_dim,), trainable=False,
                                   initializer=keras.initializers.Constant(np.asarray(std)))

    def set_stats(self, mean, std):
        """Assigns dataset statistics (e.g. from `compute_feature_stats`)."""
        mean = np.asarray(mean, dtype="float32")
        std = np.asarray(std, dtype="float32")
        if mean.shape != (self.feature_dim,) or std.shape != (self.feature_dim,):
            raise ValueError(
                f"Stats must have shape ({self.feature_dim},). "
                f"Received: mean {mean.shape}, std {std.shape}"
            )
        if np.any(std <= 0) or not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)):
            raise ValueError("Stats must be finite with std > 0.")
        self._init_mean, self._init_std = mean.tolist(), std.tolist()
        if self.built:
            self.mean.assign(mean)
            self.std.assign(std)

    def call(self, features):
        return (features - ops.cast(self.mean, features.dtype)) / ops.cast(self.std, features.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        mean, std = self._init_mean, self._init_std
        if self.built:
            mean = ops.convert_to_numpy(self.mean).tolist()
            std = ops.convert_to_numpy(self.std).tolist()
        config.update({"feature_dim": self.feature_dim, "mean": mean, "std": std})
        return config
