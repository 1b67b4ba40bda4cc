"""End-to-end tests of distillation: KL falls, teacher frozen, losses, errors, CLI."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.audio.audio_io import read_audio
from pwavenet_tf.losses.kl_divergence import kl_terms
from pwavenet_tf.models.distiller import Distiller
from pwavenet_tf.testing.cli import run_pwavenet
from pwavenet_tf.training.checkpointing import CheckpointError
from pwavenet_tf.training.distill_task import DistillTask, load_student
from pwavenet_tf.training.teacher_task import load_teacher

from .conftest import STUDENT_STEPS


def test_distillation_halves_the_kl(distilled):
    _, metrics, _ = distilled
    print({k: metrics[k] for k in ("initial_kl_per_sample", "kl_per_sample",
                                   "cross_entropy_per_sample", "entropy_per_sample", "power")})
    assert metrics["step"] == STUDENT_STEPS
    assert metrics["initial_kl_per_sample"] > 0.5
    assert 0.0 < metrics["kl_per_sample"] <= 0.5 * metrics["initial_kl_per_sample"]
    for key in ("cross_entropy_per_sample", "entropy_per_sample", "power", "train_kl_per_sample",
                "train_power"):
        assert np.isfinite(metrics[key]), key


def test_teacher_is_frozen_and_bit_identical(distilled, trained_teacher_dir):
    _, _, task = distilled
    assert task.teacher.trainable is False
    assert task.distiller.trainable_weights  # the student's
    teacher_ids = {id(w) for w in task.teacher.weights}
    assert not teacher_ids & {id(w) for w in task.distiller.trainable_weights}
    fresh, _ = load_teacher(trained_teacher_dir)
    for a, b in zip(fresh.weights, task.teacher.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)


def test_gradient_flows_through_the_teacher_input(trained_teacher_dir):
    teacher, _ = load_teacher(trained_teacher_dir)
    rng = np.random.default_rng(0)
    feats = tf.constant(rng.normal(size=(1, 4, 80)).astype("float32"))
    x = tf.Variable(rng.normal(0, 0.05, size=(1, 1024)).astype("float32"))
    mu = tf.constant(np.zeros((1, 1024), "float32"))
    log_s = tf.constant(np.full((1, 1024), -3.0, "float32"))
    with tf.GradientTape() as tape:
        terms = kl_terms(teacher, {"audio": x, "mu_tot": mu, "log_s_tot": log_s},
                         teacher.upsample_conditioning(feats), None, 4, 0)
        ce = tf.reduce_mean(terms["cross_entropy"])
    grad = tape.gradient(ce, x).numpy()
    assert np.all(np.isfinite(grad))
    # Causal: x_t influences the cross-entropy only at later steps, never the last one alone.
    assert np.abs(grad[0, :-1]).sum() > 0


def test_contrastive_term_has_the_right_sign(distilled, trained_teacher_dir, tiny_config,
                                             data_dir):
    out, _, task = distilled
    student, _ = load_student(out)
    teacher, _ = load_teacher(trained_teacher_dir)
    d = Distiller(student, teacher, num_kl_samples=8, contrastive_weight=1.0,
                  contrastive_gamma=0.3)
    batch = task_batch(task)
    terms = d.loss_terms(batch, d(batch))
    kl, mism, con = (float(terms[k]) for k in ("kl", "kl_mismatched", "contrastive"))
    # KL to the right conditioning minus gamma times KL to another utterance's: the
    # mismatched KL is *rewarded*, so a larger gamma gives a smaller loss.
    np.testing.assert_allclose(con, kl - 0.3 * mism, rtol=1e-5)
    assert kl > 0 and mism > 0 and con < kl
    total = float(d.total_loss(terms))
    np.testing.assert_allclose(total, kl + 1.0 * con, rtol=1e-5)


def task_batch(task):
    """A training batch of two utterances from the task's corpus."""
    from pwavenet_tf.training.corpus_data import load_corpus_data

    corpus = load_corpus_data(task.data_dir, task.config.audio, 4, 0, task.out_dir)
    window = task.config.distill.window_samples
    return next(iter(corpus.dataset("train", window, 2, 0, multi_speaker=False)))[0]


def test_student_config_must_match_the_teacher(trained_teacher_dir, data_dir, tiny_config,
                                               tmp_path):
    for change, words in (({"n_mels": 40}, "audio.n_mels: student config 40 vs teacher 80"),
                          ({"sample_rate": 16000}, "audio.sample_rate"),
                          ({"num_speakers": 4}, "audio.num_speakers")):
        cfg = tiny_config.override(audio=change)
        with pytest.raises(ValueError, match=words):
            DistillTask(cfg, trained_teacher_dir, data_dir, str(tmp_path / "s"), verbose=0,
                        log=lambda *_: None).run(steps=1)


def test_missing_teacher_checkpoint_is_a_clear_error(trained_teacher_dir, data_dir, tiny_config,
                                                     tmp_path):
    with pytest.raises(CheckpointError, match="not found|No trained teacher"):
        DistillTask(tiny_config, str(tmp_path / "nothing"), data_dir, str(tmp_path / "s"),
                    verbose=0).run(steps=1)
    broken = tmp_path / "broken"
    shutil.copytree(trained_teacher_dir, broken)
    shutil.rmtree(broken / "checkpoints")
    with pytest.raises(CheckpointError, match="No checkpoint found"):
        DistillTask(tiny_config, str(broken), data_dir, str(tmp_path / "s2"), verbose=0,
                    log=lambda *_: None).run(steps=1)


def test_nan_conditioning_is_rejected(distilled, tmp_path):
    out, _, _ = distilled
    bad = tmp_path / "nan.npy"
    feats = np.zeros((4, 80), "float32")
    feats[2, 5] = np.nan
    np.save(bad, feats)
    proc = subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", "generate", "--model", out,
                           "--mel", str(bad), "--output", str(tmp_path / "o.wav")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "NaN" in proc.stderr, proc.stderr
    from pwavenet_tf.models.student_generator import StudentGenerator

    student, _ = load_student(out)
    with pytest.raises(ValueError, match="NaN or Inf"):
        StudentGenerator(student).generate(feats[None])


def test_cli_generate_with_the_student(distilled, data_dir, tmp_path):
    out, _, _ = distilled
    wav = os.path.join(data_dir, "wavs", "LJ001-0002.wav")
    target = tmp_path / "student.wav"
    proc = subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", "generate", "--model", out,
                           "--input", wav, "--output", str(target), "--chunk-seconds", "0.5"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "with the student" in proc.stdout
    audio = read_audio(str(target))
    real = read_audio(wav)
    assert len(audio) == len(real) // 256 * 256
    assert 1e-4 < np.sqrt(np.mean(audio ** 2)) < 0.5


def test_metrics_file_has_every_term(distilled):
    out, _, _ = distilled
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    for key in ("step", "initial_kl_per_sample", "kl_per_sample", "cross_entropy_per_sample",
                "entropy_per_sample", "power", "train_kl_per_sample", "train_power",
                "student_rms_db", "real_rms_db"):
        assert key in m, key
    assert isinstance(m["step"], int)


def test_every_loss_term_runs_and_is_logged(trained_teacher_dir, data_dir, tiny_config, tmp_path):
    """Perceptual (pseudo-phone classifier), contrastive and spectral terms end to end."""
    cfg = tiny_config.override(distill={
        "perceptual_weight": 1.0, "perceptual_feature_weight": 0.5, "perceptual_classes": 8,
        "perceptual_classifier_steps": 20, "contrastive_weight": 0.3, "spectral_weight": 1.0,
        "checkpoint_every": 4, "num_kl_samples": 4})
    logs = []
    out = str(tmp_path / "all_terms")
    metrics = DistillTask(cfg, trained_teacher_dir, data_dir, out, verbose=0,
                          log=logs.append).run(steps=4)
    assert any("phone classifier on 8 k-means pseudo-phones" in line for line in logs), logs
    assert os.path.exists(os.path.join(out, "phone_classifier.keras"))
    for key in ("train_kl_per_sample", "train_power", "train_spectral", "train_perceptual",
                "train_perceptual_style", "train_perceptual_feature", "train_contrastive",
                "train_kl_mismatched_per_sample", "perceptual_total", "spectral"):
        assert key in metrics and np.isfinite(metrics[key]), key


def test_phone_labels_from_files(trained_teacher_dir, data_dir, tiny_config, tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    cfg = tiny_config.override(distill={"perceptual_weight": 1.0, "perceptual_labels": str(labels),
                                        "perceptual_classifier_steps": 5})
    with pytest.raises(FileNotFoundError, match="No phone label file for utterance"):
        DistillTask(cfg, trained_teacher_dir, data_dir, str(tmp_path / "s"), verbose=0,
                    log=lambda *_: None).run(steps=1)


def test_term_gradient_norms_scale_with_the_weights(distilled, trained_teacher_dir):
    from pwavenet_tf.losses.power_loss import PowerLoss
    from pwavenet_tf.training.loss_balance import term_gradient_norms

    out, _, task = distilled
    student, _ = load_student(out)
    teacher, _ = load_teacher(trained_teacher_dir)
    batch = task_batch(task)

    def norms(power_weight):
        d = Distiller(student, teacher, num_kl_samples=4, power_weight=power_weight,
                      power_loss=PowerLoss(fft_sizes=[128]), contrastive_weight=0.0)
        return term_gradient_norms(d, batch)

    one, three = norms(1.0), norms(3.0)
    assert set(one) == {"kl", "power"}  # terms with weight 0 are left out
    assert one["kl"] > 0 and one["power"] > 0
    np.testing.assert_allclose(three["power"], 3.0 * one["power"], rtol=1e-5)
    np.testing.assert_allclose(three["kl"], one["kl"], rtol=1e-5)  # fixed seeds: same sample
    assert set(norms(0.0)) == {"kl"}


def test_metrics_file_has_the_gradient_norms(distilled):
    out, metrics, _ = distilled
    for term in ("kl", "power"):
        assert metrics[f"grad_norm_{term}"] > 0, term



def test_distill_refuses_a_mu_law_teacher_and_writes_nothing(trained_teacher_dir, data_dir,
                                                             tmp_path):
    teacher = tmp_path / "mu_law_teacher"
    shutil.copytree(trained_teacher_dir, teacher)
    cfg = json.loads((teacher / "config.json").read_text())
    cfg["teacher"]["output_distribution"] = "mu_law"
    (teacher / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "student"
    proc = run_pwavenet("distill", "--teacher", teacher, "--config", "tiny", "--data", data_dir,
                        "--out", out, "--steps", "2")
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pwavenet distill: error: Invalid "
                                               "`teacher.output_distribution`"), proc.stderr
    assert "continuous output density" in err[0] and "'mu_law'" in err[0]
    assert not out.exists()


def test_init_from_grows_a_trained_student_with_the_same_output(distilled, trained_teacher_dir,
                                                                 data_dir, tiny_config, tmp_path):
    """A fresh run with `init_from` and deeper flows starts where the trained student ended:
    its first evaluation (the fixed batch, fixed draws) gives the trained student's KL; a
    resumed run ignores `init_from`."""
    import dataclasses

    student_dir, metrics, _ = distilled
    deeper = tuple(n + 1 if i == 2 else n
                   for i, n in enumerate(tiny_config.student.flow_layers))
    config = dataclasses.replace(
        tiny_config, student=dataclasses.replace(tiny_config.student, flow_layers=deeper),
        distill=dataclasses.replace(tiny_config.distill, warmup_steps=2))
    out, logs = str(tmp_path / "deep"), []
    grown = DistillTask(config, trained_teacher_dir, data_dir, out, seed=0, verbose=0,
                        log=logs.append, init_from=student_dir).run(steps=1)
    shared = len(load_student(student_dir)[0].trainable_variables)
    assert (f"student initialised from {student_dir}; 1 appended blocks start as the "
            f"identity; Adam's moments of its {shared} weights carried over") in logs, logs
    np.testing.assert_allclose(grown["initial_kl_per_sample"], metrics["kl_per_sample"],
                               rtol=1e-4)
    assert load_student(out)[0].flows[2].num_layers == deeper[2]
    logs.clear()
    again = DistillTask(config, trained_teacher_dir, data_dir, out, seed=0, verbose=0,
                        log=logs.append, init_from=student_dir).run(steps=2)
    assert again["step"] == 2
    assert f"init_from {student_dir} not used: the run resumes instead" in logs, logs
