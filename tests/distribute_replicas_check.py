"""Run as a script (a fresh process: logical devices must be set before TensorFlow starts).

One training step at global batch 4 on two logical CPU replicas (`MirroredStrategy`) must
give the weights of one replica at batch 4 with the same data, for the teacher and for
distillation (whose noise is keyed to the example, so the split does not change it).
Prints one JSON line: the largest weight difference per case.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import keras  # noqa: E402
import numpy as np  # noqa: E402

from pwavenet_tf.config import load_config  # noqa: E402
from pwavenet_tf.data.corpus import list_corpus  # noqa: E402
from pwavenet_tf.data.dataset import make_dataset  # noqa: E402
from pwavenet_tf.models.distiller import Distiller  # noqa: E402
from pwavenet_tf.training.distill_task import build_student  # noqa: E402
from pwavenet_tf.training.optimizers import ReplicaConsistentAdam  # noqa: E402
from pwavenet_tf.training.strategy import make_strategy  # noqa: E402
from pwavenet_tf.training.teacher_task import build_teacher, compile_teacher  # noqa: E402


def main(data_dir):
    config = load_config("tiny")
    utterances = list_corpus(data_dir)[:4]
    batch = next(iter(make_dataset(utterances, config.audio, 2048, 4, seed=0, shuffle=False)))
    x = {k: v for k, v in batch[0].items() if k != "speaker_id"}
    dataset = tf.data.Dataset.from_tensors((x, batch[1])).repeat()
    strategies = {"one": make_strategy("default"), "two": make_strategy("mirrored")}
    assert strategies["two"].num_replicas_in_sync == 2
    keras.utils.set_random_seed(0)
    teacher_init = [np.asarray(w) for w in build_teacher(config).weights]
    student_init = [np.asarray(w) for w in build_student(config).weights]
    rng = np.random.default_rng(0)
    teacher_frozen = [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in teacher_init]
    results = {}
    for optimizer in ("sgd", "adam_clipnorm"):
        weights = {}
        for name, strategy in strategies.items():
            def make_opt():
                if optimizer == "sgd":
                    return keras.optimizers.SGD(0.05)
                # The tasks' optimizer, with its clip active.
                return ReplicaConsistentAdam(1e-3, clipnorm=1e-3)

            teacher, frozen, student, distiller = _models(
                config, strategy, (teacher_init, student_init, teacher_frozen), make_opt)
            teacher.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
            distiller.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)
            weights[name] = {"teacher": [np.asarray(w) for w in teacher.weights],
                             "student": [np.asarray(w) for w in student.weights],
                             "frozen": [np.asarray(w) for w in frozen.weights]}
        for part in ("teacher", "student"):
            moved = max(float(np.abs(a - b).max())
                        for a, b in zip(weights["one"][part],
                                        teacher_init if part == "teacher" else student_init))
            diff = max(float(np.abs(a - b).max())
                       for a, b in zip(weights["one"][part], weights["two"][part]))
            results[f"{part}_{optimizer}"] = {"max_diff": diff, "moved": moved}
        results[f"frozen_teacher_{optimizer}"] = max(
            float(np.abs(a - b).max()) for a, b in zip(weights["two"]["frozen"], teacher_frozen))
    results.update(epoch_logs(config, strategies, dataset,
                              (teacher_init, student_init, teacher_frozen)))
    print(json.dumps(results))


def _models(config, strategy, inits, make_opt=None):
    """`(teacher, frozen, student, distiller)` under `strategy` from the fixed `inits`
    (teacher, student and frozen-teacher weights): a teacher to train and a distiller of
    the frozen one. `make_opt` gives both optimizers; None keeps the teacher's configured
    Adam (and its metrics) and gives the distiller Adam 1e-3."""
    teacher_init, student_init, teacher_frozen = inits
    with strategy.scope():
        teacher = build_teacher(config)
        teacher.set_weights(teacher_init)
        compile_teacher(teacher, config.teacher_training)
        if make_opt is not None:
            teacher.compile(optimizer=make_opt(), loss=teacher.make_loss())
        frozen = build_teacher(config)
        frozen.set_weights(teacher_frozen)
        student = build_student(config)
        student.set_weights(student_init)
        distiller = Distiller(student, frozen, num_kl_samples=4, seed=3)
        distiller.compile(optimizer=make_opt() if make_opt else ReplicaConsistentAdam(1e-3))
    return teacher, frozen, student, distiller


class _Logs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append({k: float(v) for k, v in logs.items()})


def epoch_logs(config, strategies, dataset, inits, steps=3):
    """The logged running means of a 3-step epoch (Keras' metrics, both stages) on one and
    two replicas: `{stage_epoch_logs: {"max_rel_diff", "spread"}}`. Without
    `replica_metrics` the two-replica means weight step 1 twice at step 2 (9.3801 against
    9.3139 on one device for the tiny teacher)."""
    logs = {}
    for name, strategy in strategies.items():
        teacher, _, _, distiller = _models(config, strategy, inits)
        for stage, model in (("teacher", teacher), ("distill", distiller)):
            record = _Logs()
            model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[record])
            logs[(name, stage)] = record.batches
    out = {}
    for stage in ("teacher", "distill"):
        one, two = logs[("one", stage)], logs[("two", stage)]
        keys = sorted(set(one[0]) & set(two[0]))
        rel = [abs(a[k] - b[k]) / max(abs(a[k]), 1e-6)
               for a, b in zip(one, two) for k in keys]
        # How much the running mean moves over the epoch (the check is not vacuous).
        spread = max(abs(one[-1][k] - one[0][k]) / max(abs(one[0][k]), 1e-6) for k in keys)
        out[f"{stage}_epoch_logs"] = {"max_rel_diff": max(rel), "spread": spread,
                                      "keys": keys, "steps": len(one)}
    return out


if __name__ == "__main__":
    main(sys.argv[1])
