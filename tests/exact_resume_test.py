"""Exact resume from the CLI: a `--deterministic` run killed (SIGKILL: the teacher) or
stopped mid-epoch (SIGTERM: the student, which checkpoints the step it stopped at) and
resumed ends with the same weights, Adam moments and EMA weights as an uninterrupted run,
in both stages."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

STEPS = 40
EVERY = 10


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    cfg = json.load(open(os.path.join(os.path.dirname(__file__), "..", "configs", "tiny.json")))
    cfg["teacher_training"].update(checkpoint_every=EVERY, keep_checkpoints=10)
    cfg["distill"].update(checkpoint_every=EVERY, keep_checkpoints=10, ema_decay=0.9,
                          contrastive_weight=0.3)
    path = tmp_path_factory.mktemp("cfg") / "cfg.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _args(command, config_path, data_dir, out, extra=()):
    return [sys.executable, "-m", "pwavenet_tf.cli", command, "--config", config_path,
            "--data", data_dir, "--out", str(out), "--steps", str(STEPS), "--deterministic",
            "--quiet", *extra]


def _run(args):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _start_until_checkpoint(args, out, checkpoint_step):
    """Starts `args` and returns its process once `ckpt-<checkpoint_step>` is written."""
    marker = out / "checkpoints" / f"ckpt-{checkpoint_step}.index"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, f"{marker} never written"
        time.sleep(0.01)
    return proc


def _kill_after(args, out, checkpoint_step):
    """Starts `args`, SIGKILLs it as soon as `ckpt-<checkpoint_step>` is written."""
    proc = _start_until_checkpoint(args, out, checkpoint_step)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "checkpoints" / f"ckpt-{STEPS}.index").exists(), "killed too late"


def _terminate_after(args, out, checkpoint_step):
    """Starts `args`, SIGTERMs it once `ckpt-<checkpoint_step>` is written (mid-epoch);
    returns the step it stopped and checkpointed at (the process exits 0)."""
    proc = _start_until_checkpoint(args, out, checkpoint_step)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
    return int(latest.rsplit("-", 1)[1])


def _state(out, step):
    reader = tf.train.load_checkpoint(str(out / "checkpoints" / f"ckpt-{step}"))
    names = [n for n, _ in tf.train.list_variables(str(out / "checkpoints" / f"ckpt-{step}"))
             if n.endswith("VARIABLE_VALUE") and not n.startswith("save_counter")]
    return {n: reader.get_tensor(n) for n in names}


def _assert_same_state(a, b):
    assert set(a) == set(b)
    groups = {n.split("/")[0] for n in a}
    assert {"model_weights", "optimizer", "ema_weights"} <= groups, groups
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-5, rtol=0, err_msg=name)


def _resumed_twice(args, out):
    _kill_after(args, out, EVERY)
    _kill_after(args, out, 3 * EVERY)  # the resumed run, killed again
    proc = _run(args)
    # The kill may land after ckpt-30's files exist but before the state file names it:
    # then the run resumes from ckpt-20, which is just as exact.
    assert any(f"resumed from {out / 'checkpoints' / f'ckpt-{k * EVERY}'}" in proc.stdout
               for k in (2, 3)), proc.stdout
    return proc


def test_teacher_and_student_resume_exactly_after_kills(config_path, data_dir, tmp_path):
    teacher_a, teacher_b = tmp_path / "teacher_a", tmp_path / "teacher_b"
    _run(_args("train-teacher", config_path, data_dir, teacher_a))
    _resumed_twice(_args("train-teacher", config_path, data_dir, teacher_b), teacher_b)
    _assert_same_state(_state(teacher_a, STEPS), _state(teacher_b, STEPS))
    for out in (teacher_a, teacher_b):
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["step"] == STEPS

    student_a, student_b = tmp_path / "student_a", tmp_path / "student_b"
    extra = ("--teacher", str(teacher_a))
    _run(_args("distill", config_path, data_dir, student_a, extra))
    args = _args("distill", config_path, data_dir, student_b, extra)
    stopped = _terminate_after(args, student_b, EVERY)
    assert EVERY <= stopped < STEPS  # EVERY when it lands in that step's epoch end
    proc = _run(args)
    assert f"resumed from {student_b / 'checkpoints' / f'ckpt-{stopped}'}" in proc.stdout
    state_a, state_b = _state(student_a, STEPS), _state(student_b, STEPS)
    _assert_same_state(state_a, state_b)
    # The student did train (its EMA weights differ from its raw weights).
    ema = [n for n in state_a if n.startswith("ema_weights")]
    assert any(np.abs(state_a[n] - state_a[n.replace("ema_weights", "model_weights")]).max()
               > 1e-6 for n in ema)
    metrics_a = json.loads((student_a / "metrics.json").read_text())
    metrics_b = json.loads((student_b / "metrics.json").read_text())
    assert metrics_a["step"] == metrics_b["step"] == STEPS
    assert metrics_a["kl_per_sample"] == pytest.approx(metrics_b["kl_per_sample"], abs=1e-5)
