"""End-to-end tests of the teacher: training quality, metrics, resume, CLI, generation."""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pwavenet_tf.audio.audio_io import read_audio
from pwavenet_tf.data.corpus import list_corpus
from pwavenet_tf.data.dataset import load_utterance
from pwavenet_tf.training.checkpointing import CheckpointError
from pwavenet_tf.training.teacher_task import TeacherTask, load_teacher

from .conftest import TEACHER_STEPS


def _cli(*args, timeout=600, check=True):
    proc = subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", *args], capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"pwavenet {args[0]} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_teacher_beats_the_marginal_entropy_by_two_bits(trained_teacher_dir, data_dir):
    """Bits per sample of the trained tiny teacher vs. the histogram entropy of the audio."""
    teacher, config = load_teacher(trained_teacher_dir)
    nll_nats, count, codes = 0.0, 0, []
    for utt in list_corpus(data_dir)[:6]:
        audio, feats = load_utterance(utt, config.audio)
        frames = min(len(feats), 200)
        audio, feats = audio[: frames * 256], feats[:frames]
        params = teacher({"audio": audio[None], "features": feats[None]})
        nll_nats -= float(np.sum(teacher.distribution(params).log_prob(audio[None])))
        count += audio.size
        codes.append(np.round((audio + 1.0) * 65535 / 2).astype(np.int64))
    bits = nll_nats / count / math.log(2)
    hist = np.bincount(np.concatenate(codes))
    p = hist[hist > 0] / hist.sum()
    marginal_bits = float(-(p * np.log2(p)).sum())
    print(f"teacher {bits:.3f} bits/sample vs marginal entropy {marginal_bits:.3f} bits")
    assert 12.0 < marginal_bits < 14.0
    assert bits <= marginal_bits - 2.0, (bits, marginal_bits)


def test_metrics_and_directory_layout(trained_teacher_dir):
    with open(os.path.join(trained_teacher_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["step"] == TEACHER_STEPS
    assert isinstance(metrics["train_bits_per_sample"], float)
    assert metrics["receptive_field"] == 2047
    for name in ("config.json", "feature_stats.json", "pwavenet_model.json", "checkpoints",
                 "tensorboard"):
        assert os.path.exists(os.path.join(trained_teacher_dir, name)), name


def test_validation_is_measured_with_the_ema_weights(trained_teacher_dir, data_dir):
    """`val_bits_per_sample` is the loaded (EMA) teacher's NLL on the fixed validation
    batches, and the raw weights score differently (so the EMA is what was measured)."""
    from pwavenet_tf.training.checkpointing import TrainingCheckpoint
    from pwavenet_tf.training.corpus_data import load_corpus_data
    from pwavenet_tf.training.teacher_task import build_teacher

    with open(os.path.join(trained_teacher_dir, "metrics.json")) as f:
        metrics = json.load(f)
    teacher, config = load_teacher(trained_teacher_dir)
    tc = config.teacher_training
    data = load_corpus_data(data_dir, config.audio, tc.num_validation, 0, trained_teacher_dir)
    batches = list(data.dataset("valid", tc.window_samples, tc.batch_size, 1, False,
                                shuffle=False).take(min(8, len(data.valid))))

    def bits(model):
        loss = model.make_loss()
        return float(np.mean([float(loss(y, model(x))) for x, y in batches])) / math.log(2)

    assert metrics["val_bits_per_sample"] == pytest.approx(bits(teacher), abs=1e-3)
    raw = build_teacher(config, data.stats)
    TrainingCheckpoint(trained_teacher_dir, model=raw).restore(use_ema=False)
    assert abs(bits(raw) - metrics["val_bits_per_sample"]) > 1e-3


def test_resume_continues_the_step_count(trained_teacher_dir, data_dir, tiny_config, tmp_path):
    out = str(tmp_path / "resumed")
    shutil.copytree(trained_teacher_dir, out)
    logs = []
    metrics = TeacherTask(tiny_config, data_dir, out, verbose=0, log=logs.append).run(
        steps=TEACHER_STEPS + 100)
    assert any(f"at step {TEACHER_STEPS}" in line for line in logs), logs
    assert metrics["step"] == TEACHER_STEPS + 100
    assert metrics["session_steps"] == 100
    # Continuing from a trained model, not from scratch (which starts above 12 bits).
    assert metrics["train_bits_per_sample"] < 11.8


def test_checkpoint_from_a_different_config_is_refused(trained_teacher_dir, data_dir,
                                                       tiny_config, tmp_path):
    out = str(tmp_path / "other")
    shutil.copytree(trained_teacher_dir, out)
    other = tiny_config.override(teacher={"residual_channels": 8})
    with pytest.raises(CheckpointError, match="teacher.residual_channels: checkpoint 16 vs config 8"):
        TeacherTask(other, data_dir, out, verbose=0, log=lambda *_: None).run(steps=10)


def test_cli_generate_with_both_methods(trained_teacher_dir, data_dir, tmp_path):
    wav = os.path.join(data_dir, "wavs", "LJ001-0002.wav")
    outs = {}
    for method in ("cached", "naive"):
        out = str(tmp_path / f"{method}.wav")
        proc = _cli("generate", "--model", trained_teacher_dir, "--input", wav, "--output", out,
                    "--method", method, "--max-seconds", "0.05", "--seed", "3")
        assert "samples/s" in proc.stdout
        outs[method] = read_audio(out)
    n = int(0.05 * 22050 / 256) * 256
    assert outs["cached"].shape == (n,)
    np.testing.assert_allclose(outs["cached"], outs["naive"], atol=1e-3)
    assert np.abs(outs["cached"]).max() > 0


def test_cli_help_and_clear_errors(tmp_path, data_dir):
    assert "train-teacher" in _cli("--help").stdout
    for cmd in ("train-teacher", "generate"):
        assert "--help" in _cli(cmd, "--help").stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"teacher": {"layers": 3}}))
    proc = _cli("train-teacher", "--config", str(bad), "--data", data_dir, "--out",
                str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "Unknown key(s) in section `teacher`: layers" in proc.stderr
    proc = _cli("generate", "--model", str(tmp_path / "missing"), "--input", "x.wav",
                "--output", "y.wav", check=False)
    assert proc.returncode == 2 and "not found" in proc.stderr
