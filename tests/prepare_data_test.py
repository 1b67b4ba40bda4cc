"""End to end: `pwavenet prepare-data`, then `train-teacher` streaming the shards."""

import json
import os

from pwavenet_tf import cli
from pwavenet_tf.config import load_config


def test_prepare_data_then_train_teacher_from_the_shards(data_dir, tmp_path, capsys):
    shards, run = str(tmp_path / "shards"), str(tmp_path / "run")
    assert cli.main(["prepare-data", "--config", "tiny", "--data", data_dir, "--out", shards,
                     "--shard-mb", "2"]) == 0
    out, err = capsys.readouterr()
    assert "clips=24 train=20 valid=4" in out and "24/24 clips" in err
    manifest = json.load(open(os.path.join(shards, "manifest.json")))
    assert manifest["num_clips"] == 24 and len(manifest["shards"]) > 2

    assert cli.main(["train-teacher", "--config", "tiny", "--data", shards, "--out", run,
                     "--steps", "5", "--quiet"]) == 0
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["step"] == 5
    stats = json.load(open(os.path.join(run, "feature_stats.json")))
    assert stats["mean"] == manifest["feature_stats"]["mean"]

    # Shards of other feature settings: one error line naming both hashes, exit 2.
    cfg = load_config("tiny").to_dict()
    cfg["audio"]["n_mels"] = 40
    other = tmp_path / "other.json"
    other.write_text(json.dumps(cfg))
    capsys.readouterr()
    assert cli.main(["train-teacher", "--config", str(other), "--data", shards,
                     "--out", str(tmp_path / "run2"), "--steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pwavenet train-teacher: error: the shards in")
    assert manifest["settings_hash"] in err and "n_mels: shards=80 vs config=40" in err
    assert len(err.splitlines()) == 1
