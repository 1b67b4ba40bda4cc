"""Presets: a config, feature statistics, trained weights and metadata, loadable in one call.

A preset is a folder (KerasHub style):

    config.json          the full pwavenet config (audio, teacher, student, ...)
    feature_stats.json   the normalisation statistics of the training data
    teacher.weights.h5   WaveNetTeacher weights   (optional)
    student.weights.h5   IAFStudent weights       (optional)
    metadata.json        name, description, training steps, data and measured figures
    training/            optional: the resumable training state (`save_training_state`)

Bundled presets live in `pwavenet_tf/presets/<name>/`; any folder with that layout works
too. `from_preset("ljspeech_mini")` returns a `Preset` whose `teacher()` and `student()`
build the models and load their weights.
"""

import dataclasses
import glob
import json
import os
import shutil

from pwavenet_tf.audio.feature_stats import load_feature_stats, save_feature_stats
from pwavenet_tf.config import Config, save_config

PRESETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "presets")
DEFAULT_PRESET = "ljspeech_mini"
CONFIG_FILE = "config.json"
STATS_FILE = "feature_stats.json"
METADATA_FILE = "metadata.json"
TEACHER_WEIGHTS = "teacher.weights.h5"
STUDENT_WEIGHTS = "student.weights.h5"
TRAINING_DIR = "training"


class PresetError(ValueError):
    """A preset name or folder is unknown or incomplete."""


CLIPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "clips")


def bundled_clips():
    """Paths of the example clips shipped with the package."""
    return sorted(os.path.join(CLIPS_DIR, f) for f in os.listdir(CLIPS_DIR) if f.endswith(".wav"))


def list_presets():
    """Names of the presets bundled with the package."""
    if not os.path.isdir(PRESETS_DIR):
        return []
    return sorted(d for d in os.listdir(PRESETS_DIR) if is_preset_dir(os.path.join(PRESETS_DIR, d)))


def is_preset_dir(path):
    return os.path.isfile(os.path.join(path, METADATA_FILE)) and os.path.isfile(
        os.path.join(path, CONFIG_FILE))


def preset_path(name_or_path):
    """Resolves a bundled preset name or a preset folder path."""
    if is_preset_dir(name_or_path):
        return os.path.abspath(name_or_path)
    bundled = os.path.join(PRESETS_DIR, name_or_path)
    if is_preset_dir(bundled):
        return bundled
    raise PresetError(
        f"Unknown preset {name_or_path!r}: neither a bundled preset ({', '.join(list_presets()) or 'none'}) "
        f"nor a folder holding {METADATA_FILE} and {CONFIG_FILE}."
    )


@dataclasses.dataclass
class Preset:
    """A loaded preset: its config, statistics and metadata; models are built on demand."""

    path: str
    config: Config
    stats: dict
    metadata: dict

    @property
    def name(self):
        return self.metadata.get("name", os.path.basename(self.path))

    def has(self, role):
        return os.path.isfile(os.path.join(self.path, _weights_file(role)))

    def teacher(self):
        from pwavenet_tf.training.teacher_task import build_teacher

        return self._load("teacher", build_teacher(self.config, self.stats))

    def student(self):
        from pwavenet_tf.training.distill_task import build_student

        return self._load("student", build_student(self.config, self.stats))

    def _load(self, role, model):
        path = os.path.join(self.path, _weights_file(role))
        if not os.path.isfile(path):
            raise PresetError(f"Preset {self.name!r} has no {role} weights ({path}).")
        model.load_weights(path)
        return model


def _weights_file(role):
    if role not in ("teacher", "student"):
        raise PresetError(f"role must be 'teacher' or 'student'. Received: {role!r}")
    return TEACHER_WEIGHTS if role == "teacher" else STUDENT_WEIGHTS


def from_preset(name_or_path=DEFAULT_PRESET):
    """Loads a preset by bundled name or folder: `from_preset("ljspeech_mini").student()`."""
    path = preset_path(name_or_path)
    with open(os.path.join(path, CONFIG_FILE)) as f:
        config = Config.from_dict(json.load(f))
    with open(os.path.join(path, METADATA_FILE)) as f:
        metadata = json.load(f)
    stats = load_feature_stats(os.path.join(path, STATS_FILE),
                               expected_dim=config.audio.conditioning_dim)
    return Preset(path, config, stats, metadata)


def save_preset(out_dir, config, stats, metadata, teacher=None, student=None):
    """Writes a preset folder from in-memory models."""
    os.makedirs(out_dir, exist_ok=True)
    save_config(config, os.path.join(out_dir, CONFIG_FILE))
    save_feature_stats(stats, os.path.join(out_dir, STATS_FILE))
    if teacher is not None:
        teacher.save_weights(os.path.join(out_dir, TEACHER_WEIGHTS))
    if student is not None:
        student.save_weights(os.path.join(out_dir, STUDENT_WEIGHTS))
    with open(os.path.join(out_dir, METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
    return out_dir


def preset_from_runs(teacher_dir, student_dir, out_dir, metadata):
    """Builds a preset from a teacher and a student training directory.

    `metadata` is completed with both runs' `metrics.json` (steps, bits per sample, KL).
    """
    from pwavenet_tf.training.distill_task import load_student
    from pwavenet_tf.training.teacher_task import load_teacher

    teacher, _ = load_teacher(teacher_dir)
    student, config = load_student(student_dir)
    stats = load_feature_stats(os.path.join(student_dir, STATS_FILE))
    metadata = dict(metadata)
    for role, d in (("teacher", teacher_dir), ("student", student_dir)):
        path = os.path.join(d, "metrics.json")
        if os.path.exists(path):
            with open(path) as f:
                metadata[f"{role}_training"] = json.load(f)
    return save_preset(out_dir, config, stats, metadata, teacher=teacher, student=student)


def save_training_state(teacher_dir, student_dir, out_dir):
    """Copies both runs' resumable state into `out_dir/training/{teacher,student}/`.

    Each role gets its config, feature statistics, metrics and role file, and its newest
    checkpoint only (weights with optimizer state and EMA), so the preset grows by one
    checkpoint per role. The student's recorded teacher becomes `../teacher`, the copy
    beside it, so a copy of `training/` resumes wherever it is put (`read_teacher_dir`
    resolves it). Other files already in `training/` (its README) are kept. The new state
    is written beside the old one and swapped in, so a failure leaves the old one whole.
    Returns the `training/` path.
    """
    import tensorflow as tf

    from pwavenet_tf.training import checkpointing as ck
    from pwavenet_tf.training.teacher_task import METRICS_FILE

    # What a training directory needs to resume, besides its newest checkpoint.
    run_files = (ck.CONFIG_FILE, ck.STATS_FILE, METRICS_FILE, ck.ROLE_FILE)
    target = os.path.join(out_dir, TRAINING_DIR)
    staging, retired = f"{target}.tmp-{os.getpid()}", f"{target}.old-{os.getpid()}"
    for path in (staging, retired):
        shutil.rmtree(path, ignore_errors=True)
    try:
        for role, run in (("teacher", teacher_dir), ("student", student_dir)):
            newest = tf.train.latest_checkpoint(os.path.join(run, ck.CHECKPOINT_DIR))
            if newest is None:
                raise PresetError(f"No checkpoint in {run}/{ck.CHECKPOINT_DIR} to copy as "
                                  f"the {role}'s training state.")
            dest = os.path.join(staging, role)
            checkpoints = os.path.join(dest, ck.CHECKPOINT_DIR)
            os.makedirs(checkpoints)
            for name in run_files:
                if os.path.exists(os.path.join(run, name)):
                    shutil.copy(os.path.join(run, name), os.path.join(dest, name))
            for path in glob.glob(glob.escape(newest) + ".*"):
                shutil.copy(path, checkpoints)
            name = os.path.basename(newest)
            tf.compat.v1.train.update_checkpoint_state(checkpoints, name, [name])
        student = os.path.join(staging, "student")
        info = ck.read_model_dir_info(student)
        info["teacher_dir"] = os.path.join("..", "teacher")
        ck.write_json(os.path.join(student, ck.ROLE_FILE), info)
        if os.path.isdir(target):
            for name in os.listdir(target):
                if name not in ("teacher", "student"):
                    src = os.path.join(target, name)
                    (shutil.copytree if os.path.isdir(src) else shutil.copy)(
                        src, os.path.join(staging, name))
            os.replace(target, retired)
        try:
            os.replace(staging, target)
        except OSError:
            if os.path.isdir(retired):
                os.replace(retired, target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(retired, ignore_errors=True)
    return target


def preset_metadata(name, description, student_dir, data_dir, seed=0):
    """Metadata of a preset trained on `data_dir`: the data and the held-out clips."""
    from pwavenet_tf.data.corpus import list_corpus, split_corpus
    from pwavenet_tf.training.checkpointing import read_model_dir_config

    config = read_model_dir_config(student_dir)
    utterances = list_corpus(data_dir)
    num_valid = min(config.distill.num_validation, len(utterances) - 1)
    train, valid = split_corpus(utterances, num_valid, seed=seed)
    return {
        "name": name,
        "description": description,
        "data": {"corpus": os.path.basename(os.path.normpath(data_dir)),
                 "num_clips": len(utterances), "num_train": len(train),
                 "num_held_out": len(valid), "split_seed": seed},
        "held_out": [u.id for u in valid],
        "format_version": 1,
    }
