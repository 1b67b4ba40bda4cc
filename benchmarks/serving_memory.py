"""SavedModel serving memory (issue 13, section 2): peak RSS of a fresh process that
loads an exported `ljspeech_mini` student with TensorFlow only and runs one
`serving_default` request of 10 s, 60 s and 600 s of log-mel, with the in-graph chunk loop
(`--chunk-seconds`, default 1 s) and, for comparison, one parallel pass (chunk_seconds
None) on the shorter lengths; also the process that only loads the SavedModel (the floor),
and the time of the request. Prints; asserts nothing.

Run: python benchmarks/serving_memory.py [--lengths 10 60 600] [--one-pass-lengths 10 60]
     [--chunk-seconds 1]
"""

import argparse
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The child imports TensorFlow only (not pwavenet_tf), as a serving host would.
_CHILD = r"""
import os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
path, npy = sys.argv[1:3]
loaded = tf.saved_model.load(path)
seconds = 0.0
if npy:
    mel = np.load(npy)[None]
    t = time.perf_counter()
    out = loaded.signatures["serving_default"](mel=tf.constant(mel), seed=tf.constant(0, tf.int64))
    seconds = time.perf_counter() - t
    assert out["audio"].shape[1] == mel.shape[1] * int(loaded.hop_length.numpy())
print("RESULT", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds)
"""


def _child(path, npy=""):
    r = subprocess.run([sys.executable, "-c", _CHILD, path, npy], capture_output=True,
                       text=True)
    if r.returncode:
        raise RuntimeError(f"child failed ({r.returncode}):\n{r.stderr[-3000:]}")
    kb, seconds = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")][-1].split()[1:]
    return int(kb) / 1024.0, float(seconds)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=float, nargs="+", default=[10, 60, 600])
    p.add_argument("--one-pass-lengths", type=float, nargs="*", default=[10, 60])
    p.add_argument("--chunk-seconds", type=float, default=1.0)
    args = p.parse_args()

    import numpy as np

    from pwavenet_tf.export.export_module import ExportModule
    from pwavenet_tf.presets import from_preset

    preset = from_preset("ljspeech_mini")
    student, config = preset.student(), preset.config
    sr, hop, dim = config.audio.sample_rate, config.audio.hop_length, config.audio.n_mels
    mean = np.asarray(student.feature_normalizer.mean, "float32")
    std = np.asarray(student.feature_normalizer.std, "float32")
    with tempfile.TemporaryDirectory() as tmp:
        exports = {}
        for name, chunk in (("chunked", args.chunk_seconds), ("one_pass", None)):
            exports[name] = os.path.join(tmp, name)
            ExportModule(student, config, max_seconds=max(args.lengths) + 1,
                         chunk_seconds=chunk).save(exports[name])
        floor, _ = _child(exports["chunked"])
        print(f"ljspeech_mini student SavedModel, {sr} Hz; process that only loads it: "
              f"{floor:.0f} MB peak RSS")
        print("| request | serving_default | peak RSS | request time | RTF |")
        print("|---|---|---|---|---|")
        rng = np.random.default_rng(0)
        for seconds in args.lengths:
            frames = int(seconds * sr // hop)
            npy = os.path.join(tmp, f"mel_{seconds:g}.npy")
            np.save(npy, (mean + std * rng.standard_normal((frames, dim))).astype("float32"))
            runs = [("chunked", f"{args.chunk_seconds:g} s chunks in a while_loop")]
            if seconds in args.one_pass_lengths:
                runs.append(("one_pass", "one parallel pass"))
            for name, label in runs:
                rss, took = _child(exports[name], npy)
                print(f"| {seconds:g} s | {label} | {rss:.0f} MB | {took:.1f} s | "
                      f"{took / seconds:.3f} |", flush=True)
            os.remove(npy)


if __name__ == "__main__":
    sys.exit(main())
