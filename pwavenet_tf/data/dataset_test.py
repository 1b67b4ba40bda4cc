import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio import quantize as qz
from pwavenet_tf.audio.audio_io import read_audio, write_wav
from pwavenet_tf.audio.feature_stats import compute_feature_stats
from pwavenet_tf.audio.front_end import make_log_mel
from pwavenet_tf.data.corpus import Utterance
from pwavenet_tf.data.dataset import (
    UtteranceCache,
    compute_stats_for,
    load_utterance,
    make_dataset,
)

from pwavenet_tf.testing.data import ljspeech_mini_dir  # noqa: E402

DATA_DIR = ljspeech_mini_dir()
IDS = ["LJ001-0008", "LJ001-0002", "LJ001-0013"]  # the three shortest clips (1.8-2.6 s)


@dataclasses.dataclass
class AudioCfg:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int | None = None
    window: str = "hann"
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None
    log_floor: float = 1e-5
    feature_dim: int | None = None


def _utts(ids=IDS):
    return [
        Utterance(i, os.path.join(DATA_DIR, "wavs", i + ".wav"), None, k) for k, i in enumerate(ids)
    ]


@pytest.fixture(scope="module")
def lj_cache():
    return UtteranceCache(_utts(), AudioCfg())


def test_load_utterance_log_mel(lj_cache):
    utt = _utts()[0]
    audio, feats = load_utterance(utt, AudioCfg())
    full = read_audio(utt.audio_path)
    assert audio.dtype == np.float32 and feats.dtype == np.float32
    assert feats.shape == (len(full) // 256, 80)
    assert len(audio) == feats.shape[0] * 256
    np.testing.assert_array_equal(audio, full[: len(audio)])
    np.testing.assert_allclose(feats, make_log_mel(AudioCfg())(audio[None]).numpy()[0], atol=1e-5)
    np.testing.assert_array_equal(lj_cache[0][0], audio)
    np.testing.assert_allclose(lj_cache[0][1], feats, atol=1e-5)


def test_make_dataset_shapes_and_alignment(lj_cache):
    cfg = AudioCfg()
    ds = make_dataset(_utts(), cfg, window_samples=256 * 16, batch_size=4, seed=3, cache=lj_cache)
    spec = ds.element_spec
    assert spec[0]["audio"].shape.as_list() == [4, 4096]
    assert spec[0]["features"].shape.as_list() == [4, 16, 80]
    assert spec[0]["speaker_id"].dtype == tf.int32
    layer = make_log_mel(cfg)
    for inputs, target in ds.take(2):
        audio, feats = inputs["audio"].numpy(), inputs["features"].numpy()
        assert audio.dtype == np.float32 and feats.dtype == np.float32
        assert feats.shape[1] * 256 == audio.shape[1]
        np.testing.assert_array_equal(target.numpy(), audio)
        for b in range(4):
            k = int(inputs["speaker_id"][b])  # speaker id == clip index in this test
            full_audio, _ = lj_cache[k]
            # Locate the window in the clip, then check the features are the clip's log-mel
            # (computed on the whole clip) at the same frame offset.
            offsets = [
                o
                for o in range(len(full_audio) // 256 - 16 + 1)
                if np.array_equal(full_audio[o * 256 : o * 256 + 4096], audio[b])
            ]
            assert len(offsets) == 1
            o = offsets[0]
            whole = layer(full_audio[None]).numpy()[0]
            np.testing.assert_allclose(feats[b], whole[o : o + 16], atol=1e-5)


def test_make_dataset_determinism(lj_cache):
    kwargs = dict(window_samples=2048, batch_size=3, cache=lj_cache)
    a = [x[0]["audio"].numpy() for x in make_dataset(_utts(), AudioCfg(), seed=7, **kwargs).take(3)]
    b = [x[0]["audio"].numpy() for x in make_dataset(_utts(), AudioCfg(), seed=7, **kwargs).take(3)]
    c = [x[0]["audio"].numpy() for x in make_dataset(_utts(), AudioCfg(), seed=8, **kwargs).take(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, z) for x, z in zip(a, c))
    # Epochs differ (repeat chains fresh permutations/offsets), the first one covers each clip once.
    ds = make_dataset(_utts(), AudioCfg(), seed=7, shuffle=True, repeat=False, **kwargs)
    batches = list(ds)
    assert len(batches) == 1
    assert sorted(batches[0][0]["speaker_id"].numpy().tolist()) == [0, 1, 2]


def test_lazy_loading_matches_cache(lj_cache):
    kwargs = dict(window_samples=1024, batch_size=3, seed=1, shuffle=False, repeat=False)
    cached = next(iter(make_dataset(_utts(), AudioCfg(), cache=lj_cache, **kwargs)))
    lazy = next(iter(make_dataset(_utts(), AudioCfg(), cache=None, **kwargs)))
    np.testing.assert_array_equal(cached[0]["audio"].numpy(), lazy[0]["audio"].numpy())
    np.testing.assert_allclose(cached[0]["features"].numpy(), lazy[0]["features"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(lazy[0]["speaker_id"].numpy(), [0, 1, 2])  # given order


def test_short_clip_is_padded(tmp_path):
    cfg = AudioCfg(sample_rate=8000, n_fft=128, hop_length=32, n_mels=10)
    audio = qz.quantize_16bit(np.random.default_rng(0).uniform(-0.5, 0.5, 100))
    path = write_wav(tmp_path / "short.wav", audio, 8000)
    utt = Utterance("short", path, None, 5)
    (inputs, target), = make_dataset([utt], cfg, 320, 1, repeat=False).take(1)
    a, f = inputs["audio"].numpy()[0], inputs["features"].numpy()[0]
    assert a.shape == (320,) and f.shape == (10, 10) and int(inputs["speaker_id"][0]) == 5
    np.testing.assert_array_equal(a[:96], audio[:96])  # 3 frames of 32 samples
    assert np.all(a[96:] == 0)
    assert np.all(f[3:] == np.float32(np.log(1e-5)))
    assert np.all(f[:3] > np.log(1e-5))


def test_external_features(tmp_path):
    cfg = AudioCfg(sample_rate=8000, hop_length=32, feature_dim=3)
    audio = qz.quantize_16bit(np.random.default_rng(0).uniform(-0.5, 0.5, 32 * 10 + 7))
    wav = write_wav(tmp_path / "u.wav", audio, 8000)
    feats = np.arange(30, dtype=np.float32).reshape(10, 3)
    np.save(tmp_path / "u.npy", feats)
    utt = Utterance("u", wav, str(tmp_path / "u.npy"), 0)
    a, f = load_utterance(utt, cfg)
    assert a.shape == (320,)  # audio trimmed to F * hop
    np.testing.assert_array_equal(f, feats)
    (inputs, _), = make_dataset([utt], cfg, 32 * 12, 1, repeat=False)
    np.testing.assert_array_equal(inputs["features"][0, :10].numpy(), feats)
    assert np.all(inputs["features"][0, 10:].numpy() == 0.0)  # pad value 0 for external

    np.save(tmp_path / "bad.npy", np.zeros((9, 3), np.float32))
    with pytest.raises(ValueError, match=r"F=9 frames.*327 samples.*10 frames.*bad\.npy"):
        load_utterance(dataclasses.replace(utt, features_path=str(tmp_path / "bad.npy")), cfg)
    np.save(tmp_path / "wide.npy", np.zeros((10, 4), np.float32))
    with pytest.raises(ValueError, match=r"dim 4 but audio_cfg.feature_dim=3.*wide\.npy"):
        load_utterance(dataclasses.replace(utt, features_path=str(tmp_path / "wide.npy")), cfg)
    nan = feats.copy()
    nan[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(ValueError, match=r"NaN or Inf.*nan\.npy"):
        load_utterance(dataclasses.replace(utt, features_path=str(tmp_path / "nan.npy")), cfg)
    with pytest.raises(ValueError, match="no feature file exists for utterance 'u'"):
        load_utterance(dataclasses.replace(utt, features_path=None), cfg)
    # feature_dim=None ignores the .npy and computes log-mel.
    _, mel = load_utterance(utt, dataclasses.replace(cfg, feature_dim=None, n_fft=128, n_mels=8))
    assert mel.shape == (10, 8)


def test_make_dataset_argument_errors(tmp_path):
    utt = Utterance("x", str(tmp_path / "x.wav"), None, 0)
    with pytest.raises(ValueError, match="multiple of hop_length=256. Received: window_samples=1000"):
        make_dataset([utt], AudioCfg(), 1000, 2)
    with pytest.raises(ValueError, match="window_samples=0"):
        make_dataset([utt], AudioCfg(), 0, 2)
    with pytest.raises(ValueError, match="batch_size=0"):
        make_dataset([utt], AudioCfg(), 512, 0)
    with pytest.raises(ValueError, match="no full batch"):
        make_dataset([utt], AudioCfg(), 512, 2, repeat=False)
    with pytest.raises(ValueError, match="empty"):
        make_dataset([], AudioCfg(), 512, 2)


def test_compute_stats_for(lj_cache):
    progress = []
    stats = compute_stats_for(_utts()[:2], AudioCfg(), progress=lambda d, t, u: progress.append((d, t, u.id)))
    assert progress == [(1, 2, IDS[0]), (2, 2, IDS[1])]
    expected = compute_feature_stats([lj_cache[0][1], lj_cache[1][1]])
    assert stats["count"] == expected["count"] == len(lj_cache[0][1]) + len(lj_cache[1][1])
    np.testing.assert_allclose(stats["mean"], expected["mean"], atol=1e-4)
    assert len(compute_stats_for(_utts(), AudioCfg(), cache=lj_cache)["std"]) == 80


def test_a_stream_started_at_a_step_is_the_tail_of_the_stream_from_step_0(lj_cache):
    """What exact resume needs: the batches after a resume at step 5 are the uninterrupted
    run's batches 5, 6, ... and not a replay of batches 0, 1, ..."""
    kwargs = dict(window_samples=1024, batch_size=2, seed=4, cache=lj_cache)
    full = [b[0]["audio"].numpy() for b in make_dataset(_utts(), AudioCfg(), **kwargs).take(9)]
    resumed = [b[0]["audio"].numpy()
               for b in make_dataset(_utts(), AudioCfg(), start_step=5, **kwargs).take(4)]
    for step, batch in enumerate(resumed, start=5):
        np.testing.assert_array_equal(batch, full[step])
    assert not np.array_equal(resumed[0], full[0])
    # 3 clips, batch 2: step 5 holds examples 10 and 11 (epoch 3); crops differ per epoch.
    assert len({b.tobytes() for b in full}) == len(full)
    with pytest.raises(ValueError, match="start_step"):
        make_dataset(_utts(), AudioCfg(), start_step=-1, **kwargs)
