import keras
import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.losses.perceptual_loss import PerceptualLoss, gram_matrix
from pwavenet_tf.models.phone_classifier import PhoneClassifier

HOP = 16


def _classifier():
    return PhoneClassifier(num_classes=4, hop_length=HOP, num_layers=3, channels=8,
                           dilation_cycle=3, seed=0)


def _audio(batch=2, frames=12, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((batch, frames * HOP))).astype(np.float32)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_gram_matrix_is_time_averaged():
    f = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    expected = np.einsum("btc,btd->bcd", f, f) / 5
    np.testing.assert_allclose(_np(gram_matrix(f)), expected, rtol=1e-5)


def test_zero_for_identical_and_positive_for_different_audio():
    loss = PerceptualLoss(_classifier(), style_weight=1.0, feature_weight=0.5)
    y = _audio()
    same = loss(y, y)
    assert set(same) == {"style", "feature", "total"}
    for v in same.values():
        assert float(_np(v)) == 0.0
    diff = {k: float(_np(v)) for k, v in loss(_audio(seed=1), y).items()}
    assert diff["style"] > 0 and diff["feature"] > 0
    np.testing.assert_allclose(diff["total"], diff["style"] + 0.5 * diff["feature"], rtol=1e-6)
    # A whisper-level copy of the same audio is also penalised.
    assert float(_np(loss(0.1 * y, y)["style"])) > 0


def test_gradient_flows_to_generated_audio_only():
    classifier = _classifier()
    loss = PerceptualLoss(classifier, feature_weight=1.0)
    assert classifier.trainable_weights == []
    y = tf.constant(_audio())
    g = tf.Variable(_audio(seed=1))
    with tf.GradientTape() as tape:
        total = loss(g, y)["total"]
    grad = tape.gradient(total, g).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


class ToyGenerator(keras.Model):
    """A learnable gain on fixed audio, trained through the perceptual loss in compute_loss."""

    def __init__(self, perceptual, **kwargs):
        super().__init__(**kwargs)
        self.perceptual = perceptual
        self.gain = self.add_weight(shape=(), initializer="ones", name="gain")

    def call(self, x):
        return x * self.gain

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.perceptual(y_pred, y)["total"]


def test_training_through_the_loss_leaves_the_classifier_unchanged():
    classifier = _classifier()
    before = [w.copy() for w in classifier.get_weights()]
    model = ToyGenerator(PerceptualLoss(classifier, feature_weight=1.0))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x = _audio(scale=0.05)
    model.fit(x, 6.0 * x, epochs=3, batch_size=2, verbose=0)
    assert float(_np(model.gain)) != 1.0  # the generator learned
    assert all(id(w) not in {id(v) for v in model.trainable_variables} for w in classifier.weights)
    for a, b in zip(before, classifier.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_errors_and_config(tmp_path):
    classifier = _classifier()
    with pytest.raises(ValueError, match="feature_maps"):
        PerceptualLoss(object())
    with pytest.raises(ValueError, match="style_weight"):
        PerceptualLoss(classifier, style_weight=-1.0)
    loss = PerceptualLoss(classifier, style_weight=2.0, feature_weight=0.25)
    with pytest.raises(ValueError, match="same length"):
        loss(_audio(frames=4), _audio(frames=5))
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        loss(_audio()[0], _audio()[0])
    config = loss.get_config()
    revived = PerceptualLoss.from_config(config)
    assert revived.style_weight == 2.0 and revived.feature_weight == 0.25
    assert revived.classifier.get_config() == classifier.get_config()
    assert revived.classifier.trainable is False
