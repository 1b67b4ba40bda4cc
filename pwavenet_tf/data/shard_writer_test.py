import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from pwavenet_tf.config import load_config
from pwavenet_tf.data.corpus import CorpusError, list_corpus, split_corpus
from pwavenet_tf.data.shard_dataset import ShardCorpus
from pwavenet_tf.data.shard_writer import (
    MANIFEST_NAME,
    ShardError,
    ShardSettingsError,
    encode_clip,
    prepare_shards,
    settings_hash,
)
from pwavenet_tf.testing.data import ljspeech_mini_dir
from pwavenet_tf.training.corpus_data import load_corpus_data

DATA_DIR = ljspeech_mini_dir()
CFG = load_config("tiny")
SHARD_BYTES = 1_000_000  # about 2 clips a shard: several shards from 24 clips
HOP = CFG.audio.hop_length


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shards"))
    calls = []
    manifest = prepare_shards(DATA_DIR, CFG.audio, out, num_validation=4, seed=0,
                              shard_bytes=SHARD_BYTES, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == list(range(1, 25)) and calls[-1][1] == 24
    return out, manifest


@pytest.fixture(scope="module")
def in_memory():
    """What training from the audio files loads: the same split, audio and features."""
    return load_corpus_data(DATA_DIR, CFG.audio, 4, 0, None)


def _copy(prepared, tmp_path):
    dst = str(tmp_path / "copy")
    shutil.copytree(prepared[0], dst)
    return dst


def test_manifest_numbers(prepared, in_memory):
    out, manifest = prepared
    assert manifest == json.load(open(os.path.join(out, MANIFEST_NAME)))
    assert manifest["num_clips"] == 24
    train_ids = [u.id for u in in_memory.train.utterances]
    valid_ids = [u.id for u in in_memory.valid.utterances]
    _, expected_valid = split_corpus(list_corpus(DATA_DIR), 4, seed=0)
    assert manifest["valid_ids"] == valid_ids == [u.id for u in expected_valid]
    assert manifest["split"]["train"]["num_clips"] == 20
    assert manifest["split"]["valid"]["num_clips"] == 4
    lengths = [len(in_memory.train[i][0]) for i in range(20)] + \
              [len(in_memory.valid[i][0]) for i in range(4)]
    assert manifest["num_samples"] == sum(lengths)
    assert manifest["duration_seconds"] == pytest.approx(sum(lengths) / 22050, rel=1e-12)
    assert manifest["split"]["train"]["num_samples"] == in_memory.train.num_samples
    shards = manifest["shards"]
    assert len(shards) > 4 and sum(s["num_clips"] for s in shards) == 24
    assert all(s["bytes"] <= SHARD_BYTES or s["num_clips"] == 1 for s in shards)
    for s in shards:
        assert os.path.getsize(os.path.join(out, s["file"])) == s["bytes"]
    assert manifest["settings_hash"] == settings_hash(CFG.audio)
    # Shards hold the clips in corpus order: train ids, then valid ids.
    parts = [json.load(open(os.path.join(out, ".parts", s["file"] + ".json"))) for s in shards]
    assert [i for p in parts for i in p["ids"]] == train_ids + valid_ids


def test_stats_equal_the_in_memory_stats(prepared, in_memory):
    stats = prepared[1]["feature_stats"]
    assert stats["count"] == in_memory.stats["count"]
    np.testing.assert_allclose(stats["mean"], in_memory.stats["mean"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(stats["std"], in_memory.stats["std"], rtol=0, atol=1e-5)
    streamed = load_corpus_data(prepared[0], CFG.audio, 4, 0, None)
    assert isinstance(streamed, ShardCorpus) and streamed.stats == stats
    assert len(streamed.train) == 20 and len(streamed.valid) == 4


def test_validation_examples_equal_the_in_memory_ones(prepared, in_memory):
    streamed = ShardCorpus(prepared[0], CFG.audio)
    got, want = streamed.examples("valid"), in_memory.examples("valid")
    assert [u.id for u, _, _ in got] == [u.id for u, _, _ in want]
    for (_, a, f), (_, a0, f0) in zip(got, want):
        np.testing.assert_array_equal(a, a0)  # 16-bit sources: stored bit-exactly
        np.testing.assert_array_equal(f, f0)


def _locate(clips, window):
    """(clip index, frame offset) of every place the audio window occurs in the clips."""
    found = []
    for c, (audio, _) in enumerate(clips):
        starts = np.flatnonzero(audio[::HOP] == window[0])
        for o in starts:
            if np.array_equal(audio[o * HOP: o * HOP + len(window)], window):
                found.append((c, int(o)))
    return found


def test_batches_have_aligned_audio_and_features(prepared, in_memory):
    streamed = ShardCorpus(prepared[0], CFG.audio)
    clips = [in_memory.train[i] for i in range(20)]
    ds = streamed.dataset("train", 2048, 4, seed=3, multi_speaker=True)
    assert ds.element_spec[0]["features"].shape.as_list() == [4, 8, 80]
    for inputs, target in ds.take(3):
        audio, feats = inputs["audio"].numpy(), inputs["features"].numpy()
        assert audio.shape == (4, 2048) and feats.shape == (4, 8, 80)
        assert inputs["speaker_id"].numpy().tolist() == [0, 0, 0, 0]
        np.testing.assert_array_equal(target.numpy(), audio)
        for b in range(4):
            spots = _locate(clips, audio[b])
            assert spots, "the window is no crop of a training clip"
            c, o = spots[0]
            # The features are the log-mel of the clip at the window's frames.
            np.testing.assert_allclose(feats[b], clips[c][1][o: o + 8], atol=1e-4, rtol=0)
    single = streamed.dataset("train", 2048, 4, seed=3, multi_speaker=False)
    assert set(single.element_spec[0]) == {"audio", "features"}


def test_same_seed_and_start_step_give_the_same_batches(prepared):
    streamed = ShardCorpus(prepared[0], CFG.audio)

    def audio(seed, start_step, n):
        ds = streamed.dataset("train", 1024, 4, seed=seed, multi_speaker=False,
                              start_step=start_step)
        return [x["audio"].numpy() for x, _ in ds.take(n)]

    full = audio(7, 0, 8)  # 32 examples: past the first epoch of 20 clips
    for x, y in zip(full, audio(7, 0, 8)):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(full[6:], audio(7, 6, 2)):  # a resumed stream is the tail (exact)
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(full, audio(8, 0, 8)))


def test_resume_recreates_only_the_missing_shard(prepared, tmp_path):
    out = _copy(prepared, tmp_path)
    victim = prepared[1]["shards"][2]["file"]
    original = open(os.path.join(out, victim), "rb").read()
    mtimes = {s["file"]: os.stat(os.path.join(out, s["file"])).st_mtime_ns
              for s in prepared[1]["shards"]}
    os.remove(os.path.join(out, victim))
    messages = []
    manifest = prepare_shards(DATA_DIR, CFG.audio, out, 4, seed=0, shard_bytes=SHARD_BYTES,
                              progress=lambda d, t, m: messages.append(m))
    assert manifest == prepared[1] | {"source": manifest["source"]}
    written = sorted({m for m in messages if not m.endswith("already complete")})
    assert written == [victim]
    assert open(os.path.join(out, victim), "rb").read() == original
    for name, t in mtimes.items():
        if name != victim:
            assert os.stat(os.path.join(out, name)).st_mtime_ns == t, name


def test_settings_mismatch_names_both_hashes_and_keys(prepared):
    other = dataclasses.replace(CFG.audio, n_mels=40, fmax=7000.0)
    with pytest.raises(ShardSettingsError) as e:
        ShardCorpus(prepared[0], other)
    msg = str(e.value)
    assert settings_hash(CFG.audio) in msg and settings_hash(other) in msg
    assert "n_mels: shards=80 vs config=40" in msg and "fmax: shards=8000.0 vs config=7000.0" in msg
    assert "\n" not in msg
    # num_speakers is no feature setting: same hash.
    assert settings_hash(dataclasses.replace(CFG.audio, num_speakers=0)) == settings_hash(CFG.audio)


def test_corrupt_and_missing_shards_are_named(prepared, tmp_path):
    out = _copy(prepared, tmp_path)
    name = prepared[1]["shards"][1]["file"]
    path = os.path.join(out, name)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(ShardError, match=f"shard {path} is corrupt"):
        load_corpus_data(out, CFG.audio, 4, 0, None)
    os.remove(path)
    with pytest.raises(ShardError, match=f"shard {path} listed in .* is missing"):
        load_corpus_data(out, CFG.audio, 4, 0, None)
    os.remove(os.path.join(out, MANIFEST_NAME))  # an interrupted preparation
    with pytest.raises(ShardError, match="has no manifest.json: its preparation did not finish"):
        load_corpus_data(out, CFG.audio, 4, 0, None)


def test_empty_folder_and_foreign_manifest(tmp_path):
    with pytest.raises(CorpusError, match="No audio files"):
        load_corpus_data(str(tmp_path), CFG.audio, 4, 0, None)
    with pytest.raises(CorpusError, match="No audio files"):
        prepare_shards(str(tmp_path), CFG.audio, str(tmp_path / "out"), 4)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ShardError, match="is not a `pwavenet prepare-data` manifest"):
        load_corpus_data(str(tmp_path), CFG.audio, 4, 0, None)


def test_audio_off_the_16_bit_grid_is_stored_as_float(tmp_path):
    import tensorflow as tf

    from pwavenet_tf.data.shard_dataset import parse_clip

    audio = np.linspace(-0.5, 0.5, 512, dtype=np.float32) + np.float32(1e-7)
    feats = np.arange(160, dtype=np.float32).reshape(2, 80)
    rec = parse_clip(tf.constant(encode_clip("x", 3, audio, feats)))
    np.testing.assert_array_equal(rec["audio"].numpy(), audio)
    np.testing.assert_array_equal(rec["features"].numpy(), feats)
    assert int(rec["speaker_id"]) == 3 and rec["id"].numpy() == b"x"
