import numpy as np
import pytest

from pwavenet_tf.audio.front_end import (
    audio_settings,
    feature_dim_of,
    feature_pad_value,
    make_log_mel,
)
from pwavenet_tf.config import AudioConfig


def test_audio_settings_resolves_defaults():
    s = audio_settings(AudioConfig(fmax=None))
    assert s["win_length"] == 1024 and s["fmax"] == 11025.0 and s["feature_dim"] is None
    assert audio_settings({"sample_rate": 16000, "hop_length": 200})["n_fft"] == 1024
    assert feature_pad_value(AudioConfig()) == pytest.approx(np.log(1e-5))
    assert feature_pad_value(AudioConfig(feature_dim=3)) == 0.0
    with pytest.raises(ValueError, match="no attribute 'sample_rate'"):
        audio_settings(object())


def test_audio_settings_mapping_and_feature_dim():
    cfg = {"sample_rate": 16000, "n_fft": 512, "hop_length": 128, "win_length": 400,
           "n_mels": 40, "fmin": 50, "fmax": 7000, "log_floor": 1e-4}
    assert audio_settings(cfg) == {
        "sample_rate": 16000, "n_fft": 512, "hop_length": 128, "win_length": 400,
        "window": "hann", "n_mels": 40, "fmin": 50.0, "fmax": 7000.0, "log_floor": 1e-4,
        "feature_dim": None,
    }
    assert feature_dim_of(cfg) == 40
    assert feature_dim_of({**cfg, "feature_dim": 7}) == 7
    assert feature_pad_value(cfg) == pytest.approx(np.log(1e-4))


def test_make_log_mel_follows_the_settings():
    cfg = {"sample_rate": 16000, "n_fft": 256, "hop_length": 64, "n_mels": 20,
           "fmax": 6000.0, "log_floor": 1e-3}
    layer = make_log_mel(cfg)
    assert (layer.sample_rate, layer.n_fft, layer.hop_length, layer.n_mels) == (16000, 256, 64, 20)
    assert layer.fmax == 6000.0 and layer.log_floor == 1e-3
    assert layer.mel_weight_matrix.shape == (129, 20)
    # Silence sits exactly on the log floor, the value features are padded with.
    mel = layer(np.zeros((1, 64 * 5), "float32")).numpy()[0]
    assert mel.shape == (5, 20)
    np.testing.assert_allclose(mel, feature_pad_value(cfg), rtol=1e-6)
