"""`pwavenet demo --train`: every stage at tiny size, from scratch, through the CLI."""

import subprocess
import sys

import numpy as np

from pwavenet_tf.audio.audio_io import read_audio


def test_demo_train_runs_every_stage(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", "demo", "--train", "--out",
                           str(out), "--quiet"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert stage in proc.stdout
    assert (out / "export" / "pwavenet" / "1" / "saved_model.pb").exists()
    audio = read_audio(str(out / "vocoded.wav"))
    assert audio.size > 22050 and np.isfinite(audio).all() and np.abs(audio).max() > 0
