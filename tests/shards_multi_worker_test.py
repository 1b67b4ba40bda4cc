"""Two worker processes on 127.0.0.1 (`MultiWorkerMirroredStrategy` from `TF_CONFIG`) read a
`pwavenet prepare-data` shard folder: each keeps its own half of every global batch (the
batches one process reads, also after a resume), and `prepare-data -> train-teacher ->
distill --mixed-precision bfloat16` runs from the CLI on the mini clips."""

import hashlib
import json
import math
import os
import sys

import numpy as np
import pytest

from pwavenet_tf import cli
from tests.multi_worker_test import (  # noqa: F401  (config_path is a fixture)
    STEPS,
    _fingerprints,
    _finish,
    _free_ports,
    _start,
    _start_workers,
    config_path,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, WINDOW, PROBE_STEPS = 8, 2048, 3
START_STEPS = (0, 3)  # 3 * 8 = 24 examples: the second epoch of 20 clips, 4 records in


@pytest.fixture(scope="module")
def shards(config_path, data_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shards") / "mini")
    assert cli.main(["prepare-data", "--config", config_path, "--data", data_dir, "--out", out,
                     "--shard-mb", "2"]) == 0
    assert len(json.load(open(os.path.join(out, "manifest.json")))["shards"]) > 2
    return out


def _rows(batch):
    """One short hash per example of a batch (its audio and its features)."""
    x, y = batch
    audio, feats = np.asarray(y), np.asarray(x["features"])
    return [hashlib.sha1(a.tobytes() + f.tobytes()).hexdigest()[:12]
            for a, f in zip(audio, feats)]


def _stream(shards_dir, config, start_step):
    from pwavenet_tf.config import load_config
    from pwavenet_tf.training.corpus_data import load_corpus_data

    data = load_corpus_data(shards_dir, load_config(config).audio, 4, 0, None)
    return data.dataset("train", WINDOW, BATCH, 0, False, start_step=start_step)


def _probe_main():
    """A worker: the local batches Keras' `fit` would feed it (one JSON line on stdout)."""
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    shards_dir, config = sys.argv[1:3]
    seen = {}
    for start in START_STEPS:
        it = iter(strategy.experimental_distribute_dataset(_stream(shards_dir, config, start)))
        steps = []
        for _ in range(PROBE_STEPS):
            x, y = next(it)
            local = (strategy.experimental_local_results(x)[0],
                     strategy.experimental_local_results(y)[0])
            steps.append(_rows(local))
        seen[str(start)] = steps
    print(json.dumps(seen), flush=True)


def test_workers_split_each_global_batch_of_the_shard_stream(shards, config_path):
    procs = _start_workers(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {ROOT!r}); "
         "from tests.shards_multi_worker_test import _probe_main; _probe_main()",
         shards, config_path], _free_ports(2))
    seen = [json.loads(out.strip().splitlines()[-1]) for out in _finish(procs, timeout=300)]
    for start in START_STEPS:
        one = [_rows(b) for b in _stream(shards, config_path, start).take(PROBE_STEPS)]
        for step in range(PROBE_STEPS):
            w0, w1 = seen[0][str(start)][step], seen[1][str(start)][step]
            # Worker 0 holds the first half of the one-process batch, worker 1 the second
            # (before the fix, AUTO sharding gave worker 1 the odd epochs, from the start).
            assert (w0, w1) == (one[step][:BATCH // 2], one[step][BATCH // 2:]), (start, step)
            assert not set(w0) & set(w1)


# The command-line path, in the default suite: 100 s here on 2 cores shared with a
# training and another test worker (two 2-worker trainings).
def test_prepare_data_train_teacher_distill_bfloat16_over_two_workers(shards, config_path,
                                                                       tmp_path):
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    common = ["--config", config_path, "--data", shards, "--steps", str(STEPS)]
    outs = _finish(_start("train-teacher", _free_ports(2), common + ["--out", str(teacher)]))
    a, b = _fingerprints(outs)
    assert a == b
    assert json.loads((teacher / "metrics.json").read_text())["step"] == STEPS
    assert sorted(p.name for p in (teacher / "checkpoints").glob("ckpt-*.index")) == [
        "ckpt-10.index", f"ckpt-{STEPS}.index"]

    outs = _finish(_start("distill", _free_ports(2),
                          common + ["--teacher", str(teacher), "--out", str(student),
                                    "--mixed-precision", "bfloat16"]))
    a, b = _fingerprints(outs)
    assert a == b  # both workers end with the same student weights
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["step"] == STEPS and metrics["session_steps"] == STEPS
    numbers = {k: v for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert {"kl_per_sample", "initial_kl_per_sample", "power", "train_total_loss"} <= set(numbers)
    assert all(math.isfinite(v) for v in numbers.values()), metrics
    assert sorted(p.name for p in (student / "checkpoints").glob("ckpt-*.index")) == [
        "ckpt-10.index", f"ckpt-{STEPS}.index"]
