"""Perceptual loss of Parallel WaveNet: feature and style losses through a phone classifier.

The student is pushed to produce audio whose *phonetic content* matches the real
utterance's, as seen by a frozen classifier of phones (or pseudo-phones, see
`pwavenet_tf.training.pseudo_phones`): `pwavenet_tf.models.PhoneClassifier`. For each of
its feature maps `F_l` (frame rate, `[batch, T', C_l]`, from `classifier.feature_maps`):

- **feature reconstruction** (Johnson et al.): `mean_{b,t,c} (F_l(g) - F_l(y))^2`;
- **style** (Gatys et al.; "worked better" in the Parallel WaveNet paper): the Gram matrix
  averaged over time, `G_l = F_l^T F_l / T'` (`[batch, C_l, C_l]`, one per batch element),
  and the squared Frobenius distance `sum_{c,d} (G_l(g) - G_l(y))^2`, averaged over the
  batch.

Both are averaged over the feature maps (layers) and returned as a dict
`{"style", "feature", "total"}` with `total = style_weight * style + feature_weight *
feature`. The style loss compares time-averaged second-order statistics, so it does not
require the generated and real audio to be aligned sample by sample (they still have the
same length in distillation); the feature loss requires equal lengths.

Freezing: the constructor sets `classifier.trainable = False`, so its weights are in no
`trainable_variables` list and no optimizer updates them; the real audio's features are
`stop_gradient` targets. Gradients flow only into the generated audio. `PerceptualLoss` is a
plain callable (like `PowerLoss`); it is not a layer, so a model holding it does not track
(or save) the classifier: save the classifier on its own (`.keras`). `get_config` contains
the classifier's architecture only (`from_config` gives fresh, untrained weights).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["PerceptualLoss", "gram_matrix"]


def gram_matrix(features: Any) -> Any:
    """Time-averaged Gram matrix `[batch, C, C]` of features `[batch, T, C]` (float32)."""
    f = ops.cast(features, "float32")
    frames = ops.maximum(ops.cast(ops.shape(f)[1], "float32"), 1.0)
    return ops.einsum("btc,btd->bcd", f, f) / frames


def _check_audio(x: Any, name: str) -> Any:
    x = ops.convert_to_tensor(x)
    if len(x.shape) != 2:
        raise ValueError(
            f"`{name}` must be audio of shape [batch, samples]. Received: {name}.shape={x.shape}"
        )
    return ops.cast(x, "float32")


@keras.saving.register_keras_serializable(package="pwavenet_tf")
class PerceptualLoss:
    """`loss(generated, real) -> {"style", "feature", "total"}` through a frozen classifier.

    Args:
        classifier: a trained `PhoneClassifier` (anything with `feature_maps(audio)`
            returning a list of `[batch, frames, channels]` tensors). It is frozen here.
        style_weight: weight of the Gram-matrix (style) loss in `total`.
        feature_weight: weight of the feature-reconstruction loss in `total`.
    """

    def __init__(self, classifier: Any, style_weight: float = 1.0, feature_weight: float = 0.0):
        if not hasattr(classifier, "feature_maps"):
            raise ValueError(
                "`classifier` must have a `feature_maps(audio)` method (a PhoneClassifier). "
                f"Received: classifier={classifier!r}"
            )
        style_weight = float(style_weight)
        feature_weight = float(feature_weight)
        for name, value in (("style_weight", style_weight), ("feature_weight", feature_weight)):
            if not value >= 0.0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
        classifier.trainable = False
        self.classifier = classifier
        self.style_weight = style_weight
        self.feature_weight = feature_weight

    def __call__(self, generated: Any, real: Any) -> dict:
        generated = _check_audio(generated, "generated")
        real = _check_audio(real, "real")
        g_len, y_len = generated.shape[1], real.shape[1]
        if g_len is not None and y_len is not None and g_len != y_len:
            raise ValueError(
                "`generated` and `real` must have the same length. "
                f"Received: generated.shape={generated.shape}, real.shape={real.shape}"
            )
        g_maps = self.classifier.feature_maps(generated)
        y_maps = [ops.stop_gradient(f) for f in self.classifier.feature_maps(real)]
        style = feature = 0.0
        for fg, fy in zip(g_maps, y_maps):
            fg = ops.cast(fg, "float32")
            fy = ops.cast(fy, "float32")
            gram_diff = gram_matrix(fg) - gram_matrix(fy)
            style = style + ops.mean(ops.sum(ops.square(gram_diff), axis=(1, 2)))
            feature = feature + ops.mean(ops.square(fg - fy))
        n = float(len(g_maps))
        style = style / n
        feature = feature / n
        total = self.style_weight * style + self.feature_weight * feature
        return {"style": style, "feature": feature, "total": total}

    def get_config(self) -> dict:
        return {
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "style_weight": self.style_weight,
            "feature_weight": self.feature_weight,
        }

    @classmethod
    def from_config(cls, config: dict) -> "PerceptualLoss":
        config = dict(config)
        classifier = config.pop("classifier")
        if isinstance(classifier, dict):
            classifier = keras.saving.deserialize_keras_object(classifier)
        return cls(classifier, **config)
