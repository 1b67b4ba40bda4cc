"""Two replicas (logical CPU devices, MirroredStrategy) take the step one replica takes."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "distribute_replicas_check.py")


@pytest.fixture(scope="module")
def replica_results(data_dir):
    # A fresh process: logical devices must be configured before TensorFlow starts.
    proc = subprocess.run([sys.executable, SCRIPT, data_dir], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["teacher_sgd", "student_sgd", "teacher_adam_clipnorm",
                                  "student_adam_clipnorm"])
def test_two_replicas_at_global_batch_4_equal_one_replica(replica_results, case):
    """SGD catches a loss that is not scaled by 1/replicas (the distiller's custom loss
    moved twice as far before); Adam with an active clipnorm catches per-replica clipping
    (Keras' own Adam: 1.8e-3 apart after one step)."""
    result = replica_results[case]
    assert result["moved"] > 5e-4, result  # the step did something
    assert result["max_diff"] < 1e-5, result


def test_the_frozen_teacher_is_not_updated_under_a_strategy(replica_results):
    assert replica_results["frozen_teacher_sgd"] == 0.0
    assert replica_results["frozen_teacher_adam_clipnorm"] == 0.0


@pytest.mark.parametrize("stage", ["teacher", "distill"])
def test_logged_epoch_means_on_two_replicas_equal_one_replica(replica_results, stage):
    """Keras < 3.10 summed the replicas' assigned totals (R * old + new) in every metric;
    `training/replica_metrics.py` restores `old + new`, so `loss` and every metric logged
    over a 3-step epoch (and published in metrics.json) are the one-device figures."""
    result = replica_results[f"{stage}_epoch_logs"]
    assert result["steps"] == 3 and "loss" in result["keys"], result
    assert result["spread"] > 1e-3, result  # the running means change over the epoch
    assert result["max_rel_diff"] < 1e-5, result
