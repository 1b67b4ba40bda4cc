"""`tf.distribute` strategies for both training stages, and the multi-worker conventions.

`--strategy` chooses:

- `auto` (default): `MirroredStrategy` over the visible GPUs when there are several, else
  the default strategy;
- `default`: one device;
- `mirrored`: `MirroredStrategy` over every visible GPU (or, on a machine without GPUs,
  every logical CPU device, which is how the tests run two replicas on a CPU);
- `multi_worker`: `MultiWorkerMirroredStrategy`, configured by the standard `TF_CONFIG`
  environment variable (TensorFlow's own distributed runtime; one process per machine).

The config's `batch_size` is the GLOBAL batch: each of the R replicas gets
`batch_size / R` examples per step (it must divide), so the same config trains the same
model on one GPU or eight; scale `batch_size` (and, if you want, the learning rate) with
the number of replicas yourself.

Multi-worker conventions (Keras'): the chief (task type `chief`, or `worker` 0 when no
chief is configured) writes checkpoints, `metrics.json`, TensorBoard and the resolved
config into `--out`; every other worker passes the same `--out` and writes its copies to
a temporary folder that it deletes at the end (they must take part in saving, because
saving reads mirrored variables collectively).
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from pwavenet_tf.training import replica_metrics

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def make_strategy(name="auto"):
    """The `tf.distribute.Strategy` named `name` (see the module docstring).

    Also installs the replica-correct metric updates of `replica_metrics` (Keras < 3.10
    over-weights earlier steps in every metric under more than one replica).
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: "
                         f"strategy={name!r}")
    replica_metrics.install()
    if name == "multi_worker":
        # Created before anything else touches the TensorFlow runtime (collectives are
        # configured at start-up).
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi_worker needs the TF_CONFIG environment "
                             "variable (the cluster, and this task's type and index); see "
                             "the README.")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from e
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if gpus:  # mirrored
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=cpus)


def is_multi_worker(strategy):
    """True under `MultiWorkerMirroredStrategy` (checkpoints are collectives there)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """True for the process that writes the outputs (always, outside multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    return task_type == "worker" and task_id == 0 and not has_chief


def per_replica_batch(batch_size, strategy):
    """`batch_size` (global) / number of replicas; raises when it does not divide."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"The global batch_size {batch_size} does not divide over {replicas} replicas; "
            f"use a multiple of {replicas}."
        )
    return batch_size // replicas


@contextlib.contextmanager
def output_dir(out_dir, strategy):
    """The folder this process writes to: `out_dir` on the chief, else a temporary one
    (deleted at the end)."""
    if is_chief(strategy):
        yield out_dir
        return
    tmp = tempfile.mkdtemp(prefix="pwavenet-worker-")
    try:
        # A non-chief worker resumes from the chief's checkpoints: start from a copy.
        if os.path.isdir(out_dir):
            shutil.rmtree(tmp)
            copy_chief_dir(out_dir, tmp)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_chief_dir(src, dst):
    """Copies the chief's `--out` for a non-chief worker, while the chief may be writing it.

    On a restart both start at once: the chief rewrites its JSON files (atomically, so a
    copy sees the old or the new one) and removes a killed save's partial checkpoint files,
    so a file may vanish between the listing and its copy; it is skipped (the copy then
    agrees with the chief's cleaned folder). TensorBoard logs and atomic writes' temp files
    are not copied.
    """
    def copy_if_present(source, target):
        try:
            return shutil.copy2(source, target)
        except FileNotFoundError:
            return target

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("tensorboard", "*.tmp"),
                    copy_function=copy_if_present)


def weights_fingerprint(model):
    """A short hash of a model's weights: equal on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(w)).tobytes())
    return digest.hexdigest()[:16]
