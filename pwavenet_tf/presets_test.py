"""`save_training_state`: the newest checkpoint only, a teacher path that moves with it,
and an old state left whole when the copy fails."""

import json
import os

import pytest

from pwavenet_tf import presets
from pwavenet_tf.training.distill_task import read_teacher_dir


def _fake_run(root, role, steps, extra=None):
    """A training directory as the trainers write it, with checkpoints at `steps`."""
    ckpt = root / "checkpoints"
    ckpt.mkdir(parents=True)
    for name, value in (("config.json", {"role": role}), ("metrics.json", {"step": steps[-1]}),
                        ("feature_stats.json", {"mean": [0.0]}),
                        ("pwavenet_model.json", {"role": role, "format_version": 1,
                                                 **(extra or {})})):
        (root / name).write_text(json.dumps(value))
    for s in steps:
        (ckpt / f"ckpt-{s}.index").write_text(f"index {s}")
        (ckpt / f"ckpt-{s}.data-00000-of-00001").write_text(f"data {s}")
    paths = "".join(f'all_model_checkpoint_paths: "ckpt-{s}"\n' for s in steps)
    (ckpt / "checkpoint").write_text(f'model_checkpoint_path: "ckpt-{steps[-1]}"\n' + paths)
    return root


def test_copies_the_newest_checkpoint_and_points_the_student_at_the_copied_teacher(tmp_path):
    teacher = _fake_run(tmp_path / "runs" / "t", "teacher", [250, 500])
    student = _fake_run(tmp_path / "runs" / "s", "student", [750, 1000, 1250],
                        {"teacher_dir": str(teacher)})
    out = tmp_path / "preset"
    (out / "training" / "student").mkdir(parents=True)
    (out / "training" / "README.md").write_text("how to resume")
    (out / "training" / "student" / "stale.txt").write_text("from an older state")

    target = presets.save_training_state(str(teacher), str(student), str(out))

    assert target == str(out / "training")
    assert (out / "training" / "README.md").read_text() == "how to resume"
    assert sorted(os.listdir(out / "training")) == ["README.md", "student", "teacher"]
    assert sorted(os.listdir(out / "training" / "student" / "checkpoints")) == [
        "checkpoint", "ckpt-1250.data-00000-of-00001", "ckpt-1250.index"]
    assert (out / "training" / "student" / "checkpoints" / "ckpt-1250.index").read_text() \
        == "index 1250"
    assert sorted(os.listdir(out / "training" / "teacher" / "checkpoints")) == [
        "checkpoint", "ckpt-500.data-00000-of-00001", "ckpt-500.index"]
    assert not (out / "training" / "student" / "stale.txt").exists()
    info = json.loads((out / "training" / "student" / "pwavenet_model.json").read_text())
    assert info == {"role": "student", "format_version": 1, "teacher_dir": "../teacher"}
    # The state moves as one folder: its student finds the teacher beside it.
    moved = tmp_path / "elsewhere"
    os.replace(out / "training", moved)
    assert read_teacher_dir(str(moved / "student")) == str(moved / "teacher")
    import tensorflow as tf

    assert tf.train.latest_checkpoint(str(moved / "student" / "checkpoints")) == str(
        moved / "student" / "checkpoints" / "ckpt-1250")
    assert not [p for p in os.listdir(out) if p.startswith("training.")]


def test_a_run_without_checkpoints_leaves_the_old_state_whole(tmp_path):
    teacher = _fake_run(tmp_path / "t", "teacher", [500])
    student = tmp_path / "s"
    student.mkdir()
    out = tmp_path / "preset"
    old = _fake_run(out / "training" / "student", "student", [10])
    with pytest.raises(presets.PresetError, match=r"No checkpoint in .*s/checkpoints"):
        presets.save_training_state(str(teacher), str(student), str(out))
    assert sorted(os.listdir(old / "checkpoints")) == [
        "checkpoint", "ckpt-10.data-00000-of-00001", "ckpt-10.index"]
    assert os.listdir(out) == ["training"]
