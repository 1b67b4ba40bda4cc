import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio.audio_io import read_audio, write_wav
from pwavenet_tf.audio.feature_stats import save_feature_stats
from pwavenet_tf.audio.front_end import make_log_mel
from pwavenet_tf.config import load_config
from pwavenet_tf.data.corpus import list_corpus
from pwavenet_tf.data.dataset import load_utterance
from pwavenet_tf.evaluation import metrics as M
from pwavenet_tf.evaluation.evaluator import evaluate_model, teacher_nll_bits
from pwavenet_tf.testing.data import ljspeech_mini_dir
from pwavenet_tf.training.checkpointing import STATS_FILE, TrainingCheckpoint, prepare_model_dir
from pwavenet_tf.training.teacher_task import build_teacher, load_teacher

SR = 22050


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A freshly initialised tiny teacher, written the way training writes one."""
    config = load_config("tiny")
    stats = {"mean": [-5.0] * config.audio.n_mels, "std": [2.0] * config.audio.n_mels,
             "count": 100}
    out = str(tmp_path_factory.mktemp("teacher"))
    prepare_model_dir(out, config, ("audio", "teacher"), "teacher")
    save_feature_stats(stats, os.path.join(out, STATS_FILE))
    TrainingCheckpoint(out, model=build_teacher(config, stats)).save(1)
    return out


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """One 0.25 s clip of ljspeech-mini (past its leading silence) in a plain folder."""
    out = tmp_path_factory.mktemp("clip")
    audio = read_audio(os.path.join(ljspeech_mini_dir(), "wavs", "LJ001-0001.wav"),
                       sample_rate=SR)
    write_wav(out / "LJ001-0001.wav", audio[SR // 2: SR // 2 + SR // 4], SR)
    return str(out)


def _clip(teacher_dir, clip_dir):
    teacher, config = load_teacher(teacher_dir)
    audio, feats = load_utterance(list_corpus(clip_dir)[0], config.audio)
    return teacher, config, audio, feats


def test_teacher_nll_bits_is_the_mean_one_pass_loss_in_bits(teacher_dir, clip_dir):
    teacher, _, audio, feats = _clip(teacher_dir, clip_dir)
    inputs = {"audio": tf.constant(audio[None]), "features": tf.constant(feats[None])}
    nats = teacher.make_loss().call(inputs["audio"], teacher(inputs)).numpy()[0]
    expected = float(np.mean(nats)) / math.log(2.0)
    assert 0 < expected < 20
    # Chunks of 2 frames, each with its receptive-field and look-ahead context.
    got = teacher_nll_bits(teacher, audio, feats, chunk_seconds=0.025, sample_rate=SR)
    assert got == pytest.approx(expected, rel=1e-5)


def test_evaluate_model_figures(teacher_dir, clip_dir, tmp_path):
    out = str(tmp_path / "report")
    report = evaluate_model(teacher_dir, clip_dir, out, teacher_seconds=0, griffin_lim_iters=2,
                            dnsmos=False, asr=False, plots=False, log=lambda *a: None)
    teacher, config, audio, feats = _clip(teacher_dir, clip_dir)
    (clip,) = report["clips"]
    assert clip["samples"] == len(audio) == feats.shape[0] * config.audio.hop_length
    assert clip["seconds"] == pytest.approx(len(audio) / SR)
    assert clip["teacher_nll_bits_per_sample"] == pytest.approx(
        teacher_nll_bits(teacher, audio, feats, sample_rate=SR), rel=1e-5)
    # The Griffin-Lim reference is deterministic for a seed: the same figures again.
    mel = make_log_mel(config.audio)
    reference = M.compare(audio, M.griffin_lim_from_mel(feats, mel, num_iters=2, seed=0), mel)
    assert clip["whole"]["griffin_lim"] == pytest.approx(reference, rel=1e-4)
    speed = clip["speed"]["griffin_lim"]
    assert speed["real_time_factor"] == pytest.approx(speed["seconds"] / clip["seconds"])
    assert speed["samples_per_s"] == pytest.approx(len(audio) / speed["seconds"])
    # One clip: the averages are its own figures.
    assert report["average"]["whole"]["griffin_lim"] == pytest.approx(reference, rel=1e-4)
    assert report["role"] == "teacher" and set(clip["wavs"]) == {"griffin_lim"}
    assert "Teacher resynthesis skipped (--teacher-seconds 0)." in report["notes"]
    with open(os.path.join(out, "report.json")) as f:
        assert json.load(f)["clips"][0]["teacher_nll_bits_per_sample"] == pytest.approx(
            clip["teacher_nll_bits_per_sample"])


def test_a_teacher_span_covering_the_clip_is_scored_like_the_other_vocoders(
        teacher_dir, clip_dir, tmp_path):
    """With --teacher-seconds past the clip's end the teacher's resynthesis is a whole
    clip: it gets whole-clip figures, and every vocoder gets stationary-line figures."""
    out = str(tmp_path / "report")
    report = evaluate_model(teacher_dir, clip_dir, out, teacher_seconds=1.0, griffin_lim_iters=2,
                            dnsmos=False, asr=False, plots=False, log=lambda *a: None)
    _, config, audio, _ = _clip(teacher_dir, clip_dir)
    (clip,) = report["clips"]
    teacher_audio = read_audio(os.path.join(out, clip["wavs"]["teacher"]), sample_rate=SR)
    assert len(teacher_audio) == len(audio)
    mel = make_log_mel(config.audio)
    # The WAV is 16-bit: compare with a tolerance of its quantisation.
    assert clip["whole"]["teacher"]["log_mel_l1"] == pytest.approx(
        M.compare(audio, teacher_audio, mel)["log_mel_l1"], rel=1e-2)
    lines = report["stationary_lines"]
    assert set(lines) == {"teacher", "griffin_lim"}
    gl = read_audio(os.path.join(out, clip["wavs"]["griffin_lim"]), sample_rate=SR)
    assert lines["griffin_lim"]["dc_offset"] == pytest.approx(float(np.mean(gl)), abs=1e-4)
    with open(os.path.join(out, "report.md")) as f:
        md = f.read()
    assert "## Stationary lines" in md and "Teacher L1" in md


def test_evaluate_model_rejects_bad_settings(teacher_dir, clip_dir, tmp_path):
    with pytest.raises(ValueError, match="--max-clips must be >= 1"):
        evaluate_model(teacher_dir, clip_dir, str(tmp_path), max_clips=0)
    with pytest.raises(ValueError, match="--chunk-seconds must be > 0"):
        evaluate_model(teacher_dir, clip_dir, str(tmp_path), chunk_seconds=0)
