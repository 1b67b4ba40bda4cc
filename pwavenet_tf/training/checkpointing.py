"""Checkpoints that survive crashes, refuse foreign configs and never store NaNs."""

import contextlib
import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from pwavenet_tf.atomic_files import write_json
from pwavenet_tf.config import Config, save_config

CONFIG_FILE = "config.json"
STATS_FILE = "feature_stats.json"
CHECKPOINT_DIR = "checkpoints"
ROLE_FILE = "pwavenet_model.json"


class CheckpointError(ValueError):
    """A checkpoint is missing or does not belong to this model/config."""


class TrainingDivergedError(RuntimeError):
    """The loss or the weights became NaN/Inf; training stopped without saving them."""


def read_model_dir_config(model_dir, role=None):
    """Reads `model_dir/config.json` as a `Config` (clear error when absent)."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isdir(model_dir):
        raise CheckpointError(f"Model directory not found: {model_dir}")
    if not os.path.exists(path):
        what = f"a trained {role} directory" if role else "a model directory"
        raise CheckpointError(f"{model_dir} is not {what}: {CONFIG_FILE} is missing.")
    with open(path) as f:
        try:
            data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path} is not valid JSON ({e}); it may be truncated. "
                                  "Restore it from a backup or retrain into a new --out.") from e
    return Config.from_dict(data)


def check_same_config(model_dir, config, sections):
    """Raises if `model_dir` was trained with different settings in `sections`."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    saved = read_model_dir_config(model_dir)
    diffs = []
    for section in sections:
        a, b = getattr(saved, section).to_dict(), getattr(config, section).to_dict()
        diffs += [f"{section}.{k}: checkpoint {a[k]!r} vs config {b[k]!r}"
                  for k in sorted(a) if a[k] != b[k]]
    if diffs:
        raise CheckpointError(
            f"The checkpoint in {model_dir} was trained with a different config; resume with "
            f"the same config or use a new --out directory. Differences: {'; '.join(diffs)}"
        )


def model_variables_by_path(model):
    """`{path: variable}` of every weight of `model`, keyed so checkpoints match by name.

    Keras 3 layers kept in Python lists (the WaveNet blocks, the IAF flows) are not
    reachable through TensorFlow's object graph, so a `tf.train.Checkpoint(model=model)`
    would silently skip them. Saving the variables under their unique Keras paths makes
    the checkpoint complete, and a restore into a model of another shape fails loudly.
    """
    out = {}
    for v in model.weights:
        key = v.path.replace("/", ".")
        if key in out:
            raise CheckpointError(f"Two weights share the path {v.path}; cannot checkpoint.")
        out[key] = v
    return out


def ema_variables_by_path(model, optimizer):
    """`{path: EMA variable}` of the model's trainable weights ({} without Polyak averaging).

    Keras builds the optimizer's moving averages in the order of its trainable variables.
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    if optimizer is None or model is None or not getattr(optimizer, "use_ema", False):
        return {}
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not averages:
        raise CheckpointError("The optimizer uses EMA but is not built; build it first.")
    return {v.path.replace("/", "."): a
            for v, a in zip(optimizer._trainable_variables, averages)}


class _UnreadableCheckpoint(Exception):
    """A checkpoint's files are truncated or missing (a kill or a full disk mid-write)."""


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def remove_partial_checkpoints(directory):
    """Deletes what a killed save leaves: `ckpt-N_temp*` folders and data without an index."""
    if not os.path.isdir(directory):
        return []
    removed = []
    names = os.listdir(directory)
    indexed = {n[: -len(".index")] for n in names if n.endswith(".index")}
    for name in names:
        path = os.path.join(directory, name)
        stem = name.split(".data-")[0] if ".data-" in name else None
        if "_temp" in name and name.startswith("ckpt-"):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
            removed.append(name)
        elif stem is not None and stem not in indexed:
            os.remove(path)
            removed.append(name)
    return removed


def _checkpoint_keys(path):
    return {name.split("/", 1)[0] for name, _ in tf.train.list_variables(path)}


def _saved_optimizer_slots(path):
    """The positions in its `_variables` list of the slots the checkpoint's optimizer saved."""
    return {int(name.split("/")[2]) for name, _ in tf.train.list_variables(path)
            if name.startswith("optimizer/_variables/")}


def _ema_toggled_optimizer(optimizer, path):
    """An optimizer shaped like the checkpoint's when only Polyak averaging differs.

    Keras keeps an optimizer's variables in one list (step, learning rate, the EMA slots
    when `use_ema`, then Adam's moments) and the checkpoint stores the moments by their
    position in it (the EMA slots are saved apart, as `ema_weights`), so a run resumed with
    `ema_decay` turned on or off since its checkpoint looks for them in the wrong places. Returns a built copy of `optimizer`
    with the checkpoint's `use_ema` to restore into, or None when the layouts already agree
    (or differ by something else, which the restore then reports).
    """
    if getattr(optimizer, "inner_optimizer", optimizer) is not optimizer:
        return None  # LossScaleOptimizer: its layout has more than the EMA slots
    if not hasattr(optimizer, "_momentums") or not hasattr(optimizer, "_velocities"):
        return None
    weights = optimizer._trainable_variables
    use_ema = bool(optimizer.use_ema)
    n = len(weights)
    # Adam's 2n moments follow the step, the rate and, with EMA, the n averages.
    other_layout = set(range(2, 2 + 2 * n)) if use_ema else set(range(2 + n, 2 + 3 * n))
    if _saved_optimizer_slots(path) != other_layout:
        return None
    twin = type(optimizer).from_config({**optimizer.get_config(), "use_ema": not use_ema})
    twin.build(weights)
    return twin


def _take_optimizer_state(optimizer, twin):
    """Copies step, learning rate and Adam's moments from `twin`; a fresh EMA starts at the
    restored weights (Keras would start it from zeros at a step other than 0)."""
    optimizer.iterations.assign(twin.iterations)
    optimizer.learning_rate.assign(twin.learning_rate)
    for mine, theirs in ((optimizer._momentums, twin._momentums),
                         (optimizer._velocities, twin._velocities)):
        for a, b in zip(mine, theirs):
            a.assign(b)
    if optimizer.use_ema:
        for w, average in zip(optimizer._trainable_variables,
                              optimizer._model_variables_moving_average):
            average.assign(w)


class TrainingCheckpoint:
    """`tf.train.CheckpointManager` over a model's weights, its optimizer and its EMA.

    Every checkpoint holds what a run needs to continue exactly: the model's variables by
    path (`model_variables_by_path`), the optimizer as a whole (its `iterations`, the step
    counter, and its Adam moments and EMA slots), and, when the optimizer keeps Polyak
    averages, the EMA weights again by path (`ema_weights`), so a loader without an
    optimizer can use them. `restore()` loads the newest checkpoint and checks that every
    model weight was found with the right shape; with `use_ema=True` (inference) and a
    checkpoint that has EMA weights, the model's trainable weights get the EMA values.
    `save(step)` refuses to write weights that are not finite. A run resumed with
    `ema_decay` turned on since its checkpoint starts the averages from the restored
    weights; turned off, it drops them (step and Adam's moments are restored either way).

    `extras` (`{name: Keras model/layer or optimizer}`, e.g. a GAN discriminator and its
    optimizer) are saved beside them under `name`: a model by variable path, an optimizer
    as a whole (build it first). They are restored with the same checks; a checkpoint
    written without one of them (a run that had no discriminator yet) restores the rest,
    and the missing extra keeps its fresh state, with a one-line note through `log`.
    """

    _RESERVED = ("model_weights", "optimizer", "ema_weights")

    def __init__(self, model_dir, max_to_keep=3, model=None, optimizer=None, log=None,
                 extras=None):
        self.directory = os.path.join(model_dir, CHECKPOINT_DIR)
        self.log = log or (lambda *_: None)
        self._trackables = {}
        self.extras = dict(extras or {})
        for name in self.extras:
            if name in self._RESERVED or not isinstance(name, str) or not name.isidentifier():
                raise ValueError(
                    f"`extras` names must be identifiers other than {', '.join(self._RESERVED)}. "
                    f"Received: {name!r}")
        if model is not None:
            self._trackables["model_weights"] = tf.train.Checkpoint(
                **model_variables_by_path(model))
        if optimizer is not None:
            self._trackables["optimizer"] = optimizer
        ema = ema_variables_by_path(model, optimizer)
        if ema:
            self._trackables["ema_weights"] = tf.train.Checkpoint(**ema)
        for name, obj in self.extras.items():
            if isinstance(obj, keras.optimizers.Optimizer):
                self._trackables[name] = obj
            else:
                self._trackables[name] = tf.train.Checkpoint(**model_variables_by_path(obj))
        self.checkpoint = tf.train.Checkpoint(**self._trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                  max_to_keep=max_to_keep)
        self.model = model
        self.optimizer = optimizer
        self.has_optimizer = optimizer is not None
        self.has_ema = bool(ema)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def checkpoint_paths(self):
        """The checkpoints the state file lists, newest first.

        (Not `CheckpointManager.checkpoints`: that leaves out checkpoints whose state file
        has no timestamps, such as the preset's, and would report "no checkpoint".)
        """
        state = tf.train.get_checkpoint_state(self.directory)
        if state is None:
            return []
        paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
        if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
            paths.append(state.model_checkpoint_path)
        return list(reversed(paths))  # already joined with the directory by TensorFlow

    def restore(self, require=False, use_ema=True):
        """Restores the newest checkpoint that loads; returns its path (None when none).

        A checkpoint that cannot be read (truncated or partly written files) is skipped
        with a one-line note through `log`, and the next older one is tried; a checkpoint
        that reads but does not fit the model is an error (an older one would not fit
        either). A checkpoint of an older version without `ema_weights` restores the rest
        (the optimizer's own EMA slots included).
        """
        candidates = self.checkpoint_paths()
        if not candidates:
            if require:
                raise CheckpointError(f"No checkpoint found in {self.directory}")
            return None
        unreadable = []
        for path in candidates:
            try:
                self._restore(path, use_ema)
            except _UnreadableCheckpoint as e:
                unreadable.append(f"{os.path.basename(path)} ({e})")
                self.log(f"checkpoint {path} is unreadable ({e}); trying an older one")
                continue
            return path
        raise CheckpointError(
            f"No checkpoint in {self.directory} can be read: {'; '.join(unreadable)}. Delete "
            "the folder to start over, or restore it from a backup."
        )

    def _restore(self, path, use_ema):
        try:
            keys = _checkpoint_keys(path)
        except (tf.errors.OpError, IndexError, ValueError) as e:
            raise _UnreadableCheckpoint(_first_line(e)) from e
        checkpoint = self.checkpoint
        absent = {k for k in ("ema_weights", *self.extras)
                  if k in self._trackables and k not in keys}
        twin = None
        if self.has_optimizer and "optimizer" in keys:
            twin = _ema_toggled_optimizer(self.optimizer, path)
        if absent or twin is not None:
            trackables = {k: v for k, v in self._trackables.items() if k not in absent}
            if twin is not None:
                trackables["optimizer"] = twin
            checkpoint = tf.train.Checkpoint(**trackables)
        for name in sorted(absent & set(self.extras)):
            self.log(f"checkpoint {os.path.basename(path)} has no {name}; it starts fresh")
        try:
            status = checkpoint.restore(path)
            # Every weight of the model (and the optimizer, when given) must be present.
            status.assert_existing_objects_matched()
            if not self.has_optimizer:
                status.expect_partial()  # loading for inference: optimizer slots unused
            if (use_ema and not self.has_optimizer and self.model is not None
                    and "ema_weights" in keys):
                ema = {v.path.replace("/", "."): v for v in self.model.trainable_weights}
                ema_status = tf.train.Checkpoint(
                    ema_weights=tf.train.Checkpoint(**ema)).restore(path)
                ema_status.assert_existing_objects_matched().expect_partial()
            if twin is not None:
                _take_optimizer_state(self.optimizer, twin)
                step = int(np.asarray(twin.iterations))
                self.log(f"checkpoint {os.path.basename(path)} was written "
                         f"{'without' if self.optimizer.use_ema else 'with'} Polyak "
                         "averaging: " + (f"the EMA starts from its weights at step {step}"
                                          if self.optimizer.use_ema else
                                          "its averages are dropped (ema_decay is off)"))
        except (tf.errors.DataLossError, tf.errors.NotFoundError, IndexError) as e:
            raise _UnreadableCheckpoint(_first_line(e)) from e
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            raise CheckpointError(
                f"Checkpoint {path} does not match this model (was it written with a "
                f"different config or an older version?): {_first_line(e)}"
            ) from e

    def save(self, step):
        variables = list(self.model.weights) if self.model is not None else []
        if self.has_ema:
            variables += list(ema_variables_by_path(self.model, self.optimizer).values())
        for obj in self.extras.values():
            if not isinstance(obj, keras.optimizers.Optimizer):
                variables += list(obj.weights)
        for w in variables:
            if not np.all(np.isfinite(np.asarray(w))):
                raise TrainingDivergedError(
                    f"Weight {w.path} is not finite at step {step}; refusing to write a "
                    f"corrupt checkpoint. The last good one is {self.latest}."
                )
        return self.manager.save(checkpoint_number=step)


def restore_training_state(checkpoint, log):
    """What a training task does on start: remove a killed save's leftovers, then restore
    the newest readable checkpoint (None when there is none)."""
    removed = remove_partial_checkpoints(checkpoint.directory)
    if removed:
        log(f"removed {len(removed)} partial checkpoint file(s) of an interrupted save: "
            f"{', '.join(sorted(removed))}")
    return checkpoint.restore()


@contextlib.contextmanager
def removed_on_failure(model_dir):
    """A training run that fails before its first checkpoint leaves nothing behind.

    If the block raises (or is interrupted) and `model_dir` holds no checkpoint, what the
    run created there is removed (the whole folder if it did not exist before), so a
    failed first run never leaves a folder with `config.json` and a role file that looks
    like a trained model. Folders that hold a checkpoint are left as they are.
    """
    existed = os.path.isdir(model_dir)
    before = set(os.listdir(model_dir)) if existed else set()
    try:
        yield
    except BaseException:
        checkpoints = os.path.join(model_dir, CHECKPOINT_DIR)
        if os.path.isdir(model_dir) and tf.train.latest_checkpoint(checkpoints) is None:
            if not existed:
                shutil.rmtree(model_dir, ignore_errors=True)
            else:
                for name in set(os.listdir(model_dir)) - before:
                    path = os.path.join(model_dir, name)
                    if os.path.isdir(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.remove(path)
        raise


def load_trained_model(model_dir, role, build):
    """Loads the `role` model of a training directory: `build(config, stats)` + checkpoint.

    Returns `(model, config)`. Clear errors for a missing directory, a directory of the
    other role, missing statistics or checkpoint, or weights that do not fit.
    """
    from pwavenet_tf.audio.feature_stats import load_feature_stats

    config = read_model_dir_config(model_dir, role=role)
    found = model_dir_role(model_dir)
    if found != role:
        raise CheckpointError(f"{model_dir} holds a {found or 'model of unknown role'}, "
                              f"not a {role}.")
    stats = load_feature_stats(os.path.join(model_dir, STATS_FILE),
                               expected_dim=config.audio.conditioning_dim)
    model = build(config, stats)
    TrainingCheckpoint(model_dir, model=model).restore(require=True)
    return model, config


def prepare_model_dir(model_dir, config, compare_sections, role, extra=None):
    """Creates `model_dir`, checks an existing one is compatible, writes the config.

    `role` ("teacher" or "student") is recorded in `pwavenet_model.json` with `extra`.
    """
    os.makedirs(model_dir, exist_ok=True)
    existing = model_dir_role(model_dir)
    if existing is not None and existing != role:
        raise CheckpointError(f"{model_dir} already holds a {existing}; use another --out.")
    check_same_config(model_dir, config, compare_sections)
    save_config(config, os.path.join(model_dir, CONFIG_FILE))
    write_json(os.path.join(model_dir, ROLE_FILE), {"role": role, "format_version": 1,
                                                     **(extra or {})})


def read_model_dir_info(model_dir):
    path = os.path.join(model_dir, ROLE_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def model_dir_role(model_dir):
    """"teacher", "student" or None for a directory written by this package."""
    return read_model_dir_info(model_dir).get("role")
