import numpy as np
import pytest
from keras import ops

from pwavenet_tf.layers.feature_normalizer import FeatureNormalizer
from pwavenet_tf.testing.test_case import run_layer_test

X = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 6, 4)).astype("float32")


def test_standard_layer_checks():
    out = run_layer_test(FeatureNormalizer, {"feature_dim": 4, "mean": [3.0] * 4,
                                              "std": [2.0] * 4}, X, expected_output_shape=X.shape)
    np.testing.assert_allclose(ops.convert_to_numpy(out), (X - 3.0) / 2.0, atol=1e-6)


def test_set_stats_after_build():
    layer = FeatureNormalizer(4)
    layer(X)
    layer.set_stats([1, 2, 3, 4], [1, 1, 2, 2])
    out = ops.convert_to_numpy(layer(X))
    np.testing.assert_allclose(out, (X - [1, 2, 3, 4]) / [1, 1, 2, 2], atol=1e-6)
    assert layer.get_config()["mean"] == [1, 2, 3, 4]


def test_errors():
    with pytest.raises(ValueError, match="feature_dim=5"):
        FeatureNormalizer(5)(X)
    with pytest.raises(ValueError, match="std"):
        FeatureNormalizer(2, std=[1.0, 0.0])
