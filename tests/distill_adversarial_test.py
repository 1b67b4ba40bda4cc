"""GAN-augmented distillation through `DistillTask`: the discriminator and its Adam are
checkpointed and resumed with the student.

A 20-step run, and the same run stopped at its step-10 checkpoint and resumed in a new
task, must end with the same checkpoint: student, its Adam, the discriminator's weights and
the discriminator's Adam moments and step. A resume that left the discriminator at its
fresh initialisation (or its optimizer at step 0) ends 10 discriminator steps behind.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from pwavenet_tf.config import load_config
from pwavenet_tf.training.distill_task import DistillTask
from pwavenet_tf.training.teacher_task import TeacherTask

STEPS = 20
EVERY = 10


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, data_dir):
    out = str(tmp_path_factory.mktemp("gan_teacher"))
    TeacherTask(load_config("tiny"), data_dir, out, verbose=0, log=lambda *_: None).run(steps=20)
    return out


def _config():
    return load_config("tiny").override(distill={
        "checkpoint_every": EVERY, "keep_checkpoints": 5, "window_samples": 2048,
        "adversarial_weight": 1.0, "feature_matching_weight": 1.0,
        "adversarial_start_step": 5, "discriminator_layers": 4,
        "discriminator_channels": 16, "discriminator_learning_rate": 1e-3})


def _state(out, step):
    path = str(out / "checkpoints" / f"ckpt-{step}")
    reader = tf.train.load_checkpoint(path)
    return {n: reader.get_tensor(n) for n, _ in tf.train.list_variables(path)
            if n.endswith("VARIABLE_VALUE") and not n.startswith("save_counter")}


def _run(teacher_dir, data_dir, out, steps, log=lambda *_: None):
    return DistillTask(_config(), teacher_dir, data_dir, str(out), seed=0, verbose=0,
                       log=log).run(steps=steps)


def test_resume_restores_the_discriminator_and_its_optimizer(teacher_dir, data_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    metrics = _run(teacher_dir, data_dir, a, STEPS)
    _run(teacher_dir, data_dir, b, EVERY)
    lines = []
    _run(teacher_dir, data_dir, b, STEPS, log=lines.append)
    assert any("resumed from" in line and f"ckpt-{EVERY}" in line for line in lines), lines
    assert not any("starts fresh" in line for line in lines), lines

    start, end_a, end_b = _state(a, 0 + EVERY), _state(a, STEPS), _state(b, STEPS)
    groups = {n.split("/")[0] for n in end_a}
    assert {"model_weights", "optimizer", "discriminator",
            "discriminator_optimizer"} <= groups, groups
    assert set(end_a) == set(end_b)
    disc = [n for n in end_a if n.startswith("discriminator")]
    # Discriminator kernels, biases, Adam moments and step count.
    assert any("iteration" in n for n in disc) and len(disc) > 3 * 8, disc
    for name in end_a:
        np.testing.assert_allclose(end_a[name], end_b[name], atol=1e-5, rtol=0, err_msg=name)
    # The discriminator did train between the checkpoints (the comparison is not vacuous).
    moved = max(float(np.max(np.abs(end_a[n] - start[n]))) for n in disc
                if n.startswith("discriminator/"))
    assert moved > 1e-4, moved
    steps = [end_a[n] for n in disc if "iteration" in n]
    assert all(int(s) == STEPS for s in steps), steps

    for key in ("train_adversarial", "train_feature_matching", "train_discriminator_loss",
                "grad_norm_adversarial", "grad_norm_feature_matching"):
        assert np.isfinite(metrics[key]), (key, metrics)
    on_disk = json.loads((b / "metrics.json").read_text())
    assert on_disk["step"] == STEPS and "train_discriminator_loss" in on_disk
