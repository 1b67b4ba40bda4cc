import json
import os

import pytest

from pwavenet_tf.training.strategy import copy_chief_dir, make_strategy, per_replica_batch


def test_copy_of_the_chief_dir_skips_vanished_files_logs_and_temp_files(tmp_path):
    src = tmp_path / "chief"
    (src / "checkpoints").mkdir(parents=True)
    (src / "tensorboard").mkdir()
    (src / "tensorboard" / "events").write_text("x")
    (src / "config.json").write_text('{"a": 1}\n')
    (src / "config.json.tmp").write_text('{"a"')  # an atomic write in progress
    (src / "checkpoints" / "ckpt-5.index").write_bytes(b"\x01\x02")
    # A file listed but gone when it is copied (the chief removed a partial save).
    os.symlink(src / "checkpoints" / "removed", src / "checkpoints" / "ckpt-10.index")
    dst = tmp_path / "worker"
    copy_chief_dir(str(src), str(dst))
    assert json.loads((dst / "config.json").read_text()) == {"a": 1}
    assert (dst / "checkpoints" / "ckpt-5.index").read_bytes() == b"\x01\x02"
    assert not (dst / "checkpoints" / "ckpt-10.index").exists()
    assert not (dst / "config.json.tmp").exists()
    assert not (dst / "tensorboard").exists()


def test_unknown_strategy_and_indivisible_batch_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="Received: strategy='tpu'"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        make_strategy("multi_worker")

    class TwoReplicas:
        num_replicas_in_sync = 2

    assert per_replica_batch(4, TwoReplicas()) == 2
    with pytest.raises(ValueError, match="batch_size 5 does not divide over 2 replicas"):
        per_replica_batch(5, TwoReplicas())
