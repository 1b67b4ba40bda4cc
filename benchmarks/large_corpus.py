"""A large synthetic corpus streamed from shards: preparation throughput, peak RSS, start-up.

Builds a corpus of `--clips` clips (default 2,000, about 3.3 hours) from the LJ Speech mini
clips (each: two random mini clips, each sped up/slowed down by a random factor in
[0.8, 1.25], which changes pitch and tempo together, concatenated, and a random 4-8 s
segment of that kept), then in fresh processes:

1. `pwavenet prepare-data` on it: wall time, audio hours per wall hour, peak RSS;
2. `train-teacher --steps 1` on the shards: time from process start to the end of step 1
   (model build, stats, pipeline start), peak RSS;
3. `train-teacher --steps N` on the shards and on the 24 mini clips (in memory): peak RSS
   of each and the difference (issue 10's target: within 300 MB).

Prints one line per figure. Example:
  python benchmarks/large_corpus.py --clips 2000 --steps 300
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

_CHILD = r"""
import resource, sys, time
t0 = time.time()
from pwavenet_tf import cli
rc = cli.main(sys.argv[1:])
print("BENCH", rc, time.time() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      file=sys.stderr)
sys.exit(rc)
"""


def _run(args):
    """Runs `pwavenet ARGS` in a fresh process: (wall seconds, peak RSS MiB)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    p = subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, capture_output=True,
                       text=True)
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("BENCH ")]
    if p.returncode != 0 or not lines:
        raise SystemExit(f"pwavenet {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    _, _, wall, rss = lines[-1].split()
    return float(wall), float(rss)


def build_corpus(out_dir, num_clips, seed=0):
    from pwavenet_tf.audio.audio_io import read_audio, write_wav
    from pwavenet_tf.data.corpus import list_corpus
    from pwavenet_tf.testing.data import ljspeech_mini_dir

    rate = 22050
    sources = [read_audio(u.audio_path, sample_rate=rate) for u in list_corpus(ljspeech_mini_dir())]
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for i in range(num_clips):
        parts = []
        for k in rng.choice(len(sources), 2, replace=False):
            src = sources[k]
            factor = rng.uniform(0.8, 1.25)  # > 1: faster and higher
            t = np.arange(0, len(src) - 1, factor)
            parts.append(np.interp(t, np.arange(len(src)), src).astype(np.float32))
        audio = np.concatenate(parts)
        n = int(rng.uniform(4.0, 8.0) * rate)
        start = int(rng.integers(0, max(len(audio) - n, 0) + 1))
        clip = audio[start: start + n]
        write_wav(os.path.join(out_dir, f"clip{i:05d}.wav"), clip, rate)
        total += len(clip)
    return total / rate


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=2000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--config", default="tiny")
    p.add_argument("--work", help="working folder (default: a temporary one)")
    args = p.parse_args()
    from pwavenet_tf.testing.data import ljspeech_mini_dir

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or tmp
        corpus, shards = os.path.join(work, "corpus"), os.path.join(work, "shards")
        t0 = time.time()
        seconds = build_corpus(corpus, args.clips)
        print(f"corpus: {args.clips} clips, {seconds / 3600:.2f} h, built in "
              f"{time.time() - t0:.0f} s")
        wall, rss = _run(["prepare-data", "--config", args.config, "--data", corpus,
                          "--out", shards, "--quiet"])
        manifest = json.load(open(os.path.join(shards, "manifest.json")))
        print(f"prepare-data: {wall:.0f} s wall, {seconds / wall:.1f} s of audio per s "
              f"({manifest['num_clips'] / wall:.1f} clips/s), {len(manifest['shards'])} shards "
              f"{sum(s['bytes'] for s in manifest['shards']) / 2**20:.0f} MiB, peak RSS "
              f"{rss:.0f} MiB")
        wall, rss = _run(["prepare-data", "--config", args.config, "--data", corpus,
                          "--out", shards, "--quiet"])
        print(f"prepare-data re-run (all shards complete): {wall:.1f} s")
        wall, _ = _run(["train-teacher", "--config", args.config, "--data", shards,
                        "--out", os.path.join(work, "first"), "--steps", "1", "--quiet"])
        print(f"time to the first training step (shards; process start to exit after "
              f"step 1): {wall:.1f} s")
        big_wall, big = _run(["train-teacher", "--config", args.config, "--data", shards,
                              "--out", os.path.join(work, "big"), "--steps", str(args.steps),
                              "--quiet"])
        small_wall, small = _run(["train-teacher", "--config", args.config, "--data",
                                  ljspeech_mini_dir(), "--out", os.path.join(work, "small"),
                                  "--steps", str(args.steps), "--quiet"])
        print(f"train-teacher {args.steps} steps: peak RSS {big:.0f} MiB streaming "
              f"{args.clips} clips ({big_wall:.0f} s) vs {small:.0f} MiB for the 24 mini clips "
              f"in memory ({small_wall:.0f} s): difference {big - small:+.0f} MiB")


if __name__ == "__main__":
    main()
