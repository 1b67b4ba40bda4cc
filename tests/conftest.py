"""Session fixtures: one tiny teacher (and student) trained on ljspeech-mini, shared by tests."""

import os

import pytest

from pwavenet_tf.config import load_config
from pwavenet_tf.testing.data import ljspeech_mini_dir

TEACHER_STEPS = 400


@pytest.fixture(scope="session")
def data_dir():
    return ljspeech_mini_dir()


@pytest.fixture(scope="session")
def tiny_config():
    return load_config("tiny")


@pytest.fixture(scope="session")
def trained_teacher_dir(tmp_path_factory, data_dir, tiny_config):
    """The tiny teacher trained for TEACHER_STEPS steps (about a minute on 2 cores)."""
    from pwavenet_tf.training.teacher_task import TeacherTask

    out = str(tmp_path_factory.mktemp("teacher"))
    TeacherTask(tiny_config, data_dir, out, seed=0, verbose=0, log=lambda *_: None).run(
        steps=TEACHER_STEPS
    )
    assert os.path.exists(os.path.join(out, "metrics.json"))
    return out


STUDENT_STEPS = 150


@pytest.fixture(scope="session")
def distilled(tmp_path_factory, trained_teacher_dir, data_dir, tiny_config):
    """(student_dir, metrics, task): the tiny student distilled for STUDENT_STEPS steps."""
    from pwavenet_tf.training.distill_task import DistillTask

    out = str(tmp_path_factory.mktemp("student"))
    task = DistillTask(tiny_config, trained_teacher_dir, data_dir, out, seed=0, verbose=0,
                       log=lambda *_: None)
    metrics = task.run(steps=STUDENT_STEPS)
    return out, metrics, task
