import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio import quantize as qz
from pwavenet_tf.data.corpus import Utterance
from pwavenet_tf.data.dataset import UtteranceCache
from pwavenet_tf.data.tfrecords import (
    load_manifest,
    parse_utterance_record,
    tfrecord_dataset,
    write_tfrecord_shards,
)

from pwavenet_tf.testing.data import ljspeech_mini_dir  # noqa: E402

DATA_DIR = ljspeech_mini_dir()
IDS = ["LJ001-0008", "LJ001-0002"]  # the two shortest clips


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


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    utts = [Utterance(i, os.path.join(DATA_DIR, "wavs", i + ".wav"), None, k + 3) for k, i in enumerate(IDS)]
    out = str(tmp_path_factory.mktemp("tfr"))
    calls = []
    paths = write_tfrecord_shards(utts, AudioCfg(), out, 2, progress=lambda d, t, u: calls.append(d))
    assert calls == [1, 2]
    return out, paths, UtteranceCache(utts, AudioCfg())


def _locate(full_audio: np.ndarray, window: np.ndarray, hop: int) -> list[int]:
    return [
        o
        for o in range(max(len(full_audio) // hop - len(window) // hop, 0) + 1)
        if np.array_equal(full_audio[o * hop : o * hop + len(window)], window)
    ]


def test_write_shards_and_manifest(shards):
    out, paths, cache = shards
    assert [os.path.basename(p) for p in paths] == [
        "shard-00000-of-00002.tfrecord",
        "shard-00001-of-00002.tfrecord",
    ]
    manifest = load_manifest(out)
    assert manifest["num_utterances"] == 2 and manifest["num_shards"] == 2
    assert manifest["audio_settings"]["hop_length"] == 256
    assert manifest["audio_settings"]["fmax"] == 11025.0
    assert manifest["feature_dim"] == 80 and manifest["speaker_ids"] == [3, 4]
    assert manifest["num_frames"] == sum(len(cache[i][1]) for i in range(2))
    assert manifest["num_samples"] == manifest["num_frames"] * 256
    # Full records round-trip: 16-bit audio (exact here: the source is 16-bit) and features.
    for k, path in enumerate(paths):
        (record,) = [parse_utterance_record(r) for r in tf.data.TFRecordDataset(path)]
        audio, feats = cache[k]
        assert record["id"].numpy().decode() == IDS[k]
        assert int(record["speaker_id"]) == 3 + k
        np.testing.assert_array_equal(record["audio"].numpy(), qz.quantize_16bit(audio))
        np.testing.assert_array_equal(record["features"].numpy(), feats)


def test_windows_match_source(shards):
    out, _, cache = shards
    ds = tfrecord_dataset(out, AudioCfg(), window_samples=256 * 8, batch_size=2, seed=5)
    assert ds.element_spec[0]["features"].shape.as_list() == [2, 8, 80]
    assert ds.element_spec[0]["speaker_id"].dtype == tf.int32
    for inputs, target in ds.take(3):
        audio, feats = inputs["audio"].numpy(), inputs["features"].numpy()
        assert audio.shape == (2, 2048) and feats.shape == (2, 8, 80)
        np.testing.assert_array_equal(target.numpy(), audio)
        for b in range(2):
            k = int(inputs["speaker_id"][b]) - 3
            src_audio, src_feats = cache[k]
            offsets = _locate(qz.quantize_16bit(src_audio), audio[b], 256)
            assert len(offsets) == 1
            np.testing.assert_array_equal(feats[b], src_feats[offsets[0] : offsets[0] + 8])


def test_determinism_and_padding(shards):
    out, _, cache = shards

    def first(seed, **kw):
        return [x[0]["audio"].numpy() for x in tfrecord_dataset(out, AudioCfg(), 512, 2, seed=seed, **kw).take(4)]

    a, b, c = first(11), first(11), first(12)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, z) for x, z in zip(a, c))
    # A window longer than both clips: padded with 0 audio / log(log_floor) features.
    long = 256 * 200
    batches = list(tfrecord_dataset(out, AudioCfg(), long, 2, shuffle=False, repeat=False))
    assert len(batches) == 1
    inputs, _ = batches[0]
    np.testing.assert_array_equal(inputs["speaker_id"].numpy(), [3, 4])
    n0 = len(cache[0][0])
    np.testing.assert_array_equal(inputs["audio"][0, :n0].numpy(), qz.quantize_16bit(cache[0][0]))
    assert np.all(inputs["audio"][0, n0:].numpy() == 0.0)
    f0 = len(cache[0][1])
    assert np.all(inputs["features"][0, f0:].numpy() == np.float32(np.log(1e-5)))


def test_settings_mismatch_and_manifest_errors(shards, tmp_path):
    out, _, _ = shards
    with pytest.raises(ValueError, match=r"keys \['hop_length', 'n_mels'\].*hop_length: manifest=256 vs audio_cfg=128"):
        tfrecord_dataset(out, AudioCfg(hop_length=128, n_mels=40), 512, 2)
    # Equivalent configs (defaults spelled out) are accepted.
    tfrecord_dataset(out, AudioCfg(win_length=1024, fmax=11025.0), 512, 2)
    with pytest.raises(ValueError, match="multiple of hop_length=256"):
        tfrecord_dataset(out, AudioCfg(), 500, 2)
    with pytest.raises(ValueError, match="No TFRecord manifest"):
        tfrecord_dataset(tmp_path, AudioCfg(), 512, 2)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="Malformed TFRecord manifest"):
        load_manifest(tmp_path)


def test_write_errors(tmp_path):
    utt = Utterance("x", str(tmp_path / "x.wav"), None, 0)
    with pytest.raises(ValueError, match="num_shards=2"):
        write_tfrecord_shards([utt], AudioCfg(), tmp_path, 2)
    with pytest.raises(ValueError, match="num_shards=0"):
        write_tfrecord_shards([utt], AudioCfg(), tmp_path, 0)
