import os

import keras
import numpy as np
import pytest

from pwavenet_tf.models.phone_classifier import PhoneClassifier
from pwavenet_tf.testing import test_case

SMALL = dict(num_classes=5, hop_length=16, num_layers=3, channels=8, filter_size=3,
             dilation_cycle=2, seed=3)


def _audio(batch=2, samples=128, seed=0):
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((batch, samples))).astype(np.float32)


def test_standard_layer_checks():
    test_case.run_layer_test(
        PhoneClassifier,
        init_kwargs=SMALL,
        input_data=_audio(),
        expected_output_shape=(2, 8, 5),
        atol=1e-5,
    )


def test_shapes_features_and_single_forward_pass():
    model = PhoneClassifier(**SMALL)
    audio = _audio(samples=16 * 7 + 5)  # extra samples are ignored
    logits = keras.ops.convert_to_numpy(model(audio))
    assert logits.shape == (2, 7, 5) and logits.dtype == np.float32
    maps = model.feature_maps(audio)
    assert len(maps) == model.num_feature_maps == SMALL["num_layers"] + 2
    for f in maps:
        assert tuple(f.shape) == (2, 7, SMALL["channels"])
    # call and feature_maps run the same layers: the logits of `forward` equal `call`'s.
    _, forward_logits = model.forward(keras.ops.convert_to_tensor(audio))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(forward_logits), logits, atol=1e-6)
    assert model.dilations == [1, 2, 1]
    assert model.receptive_field == 2 * 4 + 1


def test_frames_are_centred_and_non_causal():
    model = PhoneClassifier(**dict(SMALL, num_layers=1, filter_size=1))  # receptive field 1
    hop = SMALL["hop_length"]
    base = np.zeros((1, hop * 6), np.float32)
    ref = keras.ops.convert_to_numpy(model(base))
    changed = []
    for sample in (3 * hop - hop // 2, 3 * hop + hop // 2 - 1):  # the edges of frame 3
        x = base.copy()
        x[0, sample] = 0.5
        diff = np.abs(keras.ops.convert_to_numpy(model(x)) - ref).max(axis=-1)[0]
        changed.append(np.nonzero(diff > 1e-7)[0].tolist())
    assert changed == [[3], [3]]


def test_seed_makes_init_deterministic():
    a = PhoneClassifier(**SMALL)
    b = PhoneClassifier(**SMALL)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_save_and_load_round_trip(tmp_path):
    model = PhoneClassifier(**dict(SMALL, input_mu=0.0, name="clf"))
    audio = _audio()
    path = os.path.join(tmp_path, "clf.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, PhoneClassifier)
    assert restored.get_config() == model.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(audio)),
                               keras.ops.convert_to_numpy(model(audio)), atol=1e-6)
    for fa, fb in zip(restored.feature_maps(audio), model.feature_maps(audio)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(fa),
                                   keras.ops.convert_to_numpy(fb), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [dict(num_classes=1), dict(hop_length=0), dict(num_layers=0), dict(channels=2.5),
     dict(input_mu=-1.0)],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        PhoneClassifier(**dict(SMALL, **kwargs))
