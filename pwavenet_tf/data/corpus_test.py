import os

import numpy as np
import pytest

from pwavenet_tf.data.corpus import ROOT_SPEAKER, CorpusError, Utterance, list_corpus, split_corpus
from pwavenet_tf.testing.data import ljspeech_mini_dir

DATA_DIR = ljspeech_mini_dir()


def _touch(path, content=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def test_ljspeech_layout():
    utts, speakers = list_corpus(DATA_DIR, return_speakers=True)
    assert len(utts) == 24
    assert [u.id for u in utts] == [f"LJ001-{i:04d}" for i in range(1, 25)]
    assert utts[0].audio_path == os.path.join(DATA_DIR, "wavs", "LJ001-0001.wav")
    assert all(u.speaker_id == 0 and u.features_path is None for u in utts)
    assert speakers == ["ljspeech-mini"]
    assert list_corpus(DATA_DIR) == utts  # deterministic; plain list without speakers


def test_ljspeech_layout_features_and_missing_wav(tmp_path):
    (tmp_path / "metadata.csv").write_text("b|text|text\na|x|x\n\n")
    _touch(str(tmp_path / "wavs" / "a.wav"))
    _touch(str(tmp_path / "wavs" / "b.wav"))
    _touch(str(tmp_path / "wavs" / "a.npy"))
    _touch(str(tmp_path / "features" / "b.npy"))
    _touch(str(tmp_path / "wavs" / "unlisted.wav"))
    utts = list_corpus(tmp_path)
    assert [u.id for u in utts] == ["a", "b"]
    assert utts[0].features_path == str(tmp_path / "wavs" / "a.npy")
    assert utts[1].features_path == str(tmp_path / "features" / "b.npy")
    assert list_corpus(tmp_path, feature_ext=".mel")[0].features_path is None
    (tmp_path / "metadata.csv").write_text("a|x|x\nc|y|y\n")
    with pytest.raises(CorpusError, match=r"missing: .*wavs/c\.wav"):
        list_corpus(tmp_path)
    (tmp_path / "metadata.csv").write_text("a|x|x\na|y|y\n")
    with pytest.raises(CorpusError, match="Duplicate id 'a' on line 2"):
        list_corpus(tmp_path)


def test_plain_layout_speakers(tmp_path):
    _touch(str(tmp_path / "spk_b" / "one.wav"))
    _touch(str(tmp_path / "spk_a" / "two.flac"))
    _touch(str(tmp_path / "spk_a" / "deep" / "three.MP3"))
    _touch(str(tmp_path / "spk_a" / "two.npy"))
    _touch(str(tmp_path / "features" / "spk_b" / "one.npy"))
    _touch(str(tmp_path / "notes.txt"))
    utts, speakers = list_corpus(tmp_path, return_speakers=True)
    assert speakers == ["spk_a", "spk_b"]
    assert utts == [
        Utterance("spk_a/deep/three", str(tmp_path / "spk_a" / "deep" / "three.MP3"), None, 0),
        Utterance(
            "spk_a/two", str(tmp_path / "spk_a" / "two.flac"), str(tmp_path / "spk_a" / "two.npy"), 0
        ),
        Utterance(
            "spk_b/one",
            str(tmp_path / "spk_b" / "one.wav"),
            str(tmp_path / "features" / "spk_b" / "one.npy"),
            1,
        ),
    ]
    _touch(str(tmp_path / "top.ogg"))
    utts, speakers = list_corpus(tmp_path, return_speakers=True)
    assert speakers == [ROOT_SPEAKER, "spk_a", "spk_b"]
    assert {u.id: u.speaker_id for u in utts}["top"] == 0


def test_plain_layout_single_speaker(tmp_path):
    data = tmp_path / "myvoice"
    _touch(str(data / "x.wav"))
    _touch(str(data / "y.wav"))
    utts, speakers = list_corpus(data, return_speakers=True)
    assert speakers == ["myvoice"] and [u.speaker_id for u in utts] == [0, 0]
    _touch(str(data / "x.flac"))
    with pytest.raises(CorpusError, match="share the id 'x'"):
        list_corpus(data)


def test_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="not found.*nowhere"):
        list_corpus(tmp_path / "nowhere")
    _touch(str(tmp_path / "readme.txt"))
    with pytest.raises(CorpusError, match="No audio files"):
        list_corpus(tmp_path)


def test_split_corpus():
    utts = [Utterance(f"u{i}", f"/a/u{i}.wav", None, 0) for i in range(10)]
    train, valid = split_corpus(utts, 3, seed=0)
    assert len(train) == 7 and len(valid) == 3
    assert sorted(train + valid, key=lambda u: u.id) == sorted(utts, key=lambda u: u.id)
    assert split_corpus(utts, 3, seed=0) == (train, valid)
    assert split_corpus(utts, 3, seed=1)[1] != valid
    assert train == [u for u in utts if u in train]  # input order kept
    perm = np.random.default_rng(0).permutation(10)[:3]
    assert {u.id for u in valid} == {f"u{i}" for i in perm}
    assert split_corpus(utts, 0) == (utts, [])
    with pytest.raises(ValueError, match="num_validation=10"):
        split_corpus(utts, 10)
    with pytest.raises(ValueError, match="num_validation=-1"):
        split_corpus(utts, -1)
