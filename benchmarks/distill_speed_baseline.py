"""Distillation step speed against the code of an earlier revision (issue 10, section 6:
"distillation at the ljspeech_mini shape: at least 2x today's training samples/s", where
"today" is the code the issue was filed against). Prints; asserts nothing.

The issue recorded no distillation figure when it was filed, so this measures the
baseline now, on the same machine and in the same run as the current code: `REV` (default
`aa51c63`, main when the issue was filed) is checked out into a temporary `git worktree`,
and fresh subprocesses alternate between

- `baseline`: REV's own code with REV's `ljspeech_mini` config: its teacher and student
  builders and its `Distiller` (the terms of its config, Adam with clipping, as REV's
  `DistillTask` assembled them);
- `current`: this tree's code with this tree's `ljspeech_mini` config (the shipped recipe:
  Parallel WaveGAN's STFT resolutions, the long-term-spectrum term, the interpolating
  upsampler, the output high-pass), built by `pwavenet_tf.benchmarks.training.build_stage`
  as `pwavenet distill` builds it;
- `current-old-recipe`: this tree's code with REV's config file, so that the code's and
  the recipe's share of a difference can be told apart.

Each subprocess builds the models with random weights, runs `--warmup` then `--steps`
compiled (graph-mode) `fit` steps on one fixed random batch of the distill section's shape
(4 x 4,096 at ljspeech_mini) and prints the steps' wall-clock seconds. The figure per
variant is the median over all its rounds' steps; training samples/s = batch x window /
median step. Pause other work on the machine while it runs (it takes about 2 minutes a
subprocess on 2 cores).

Run (from the repository root):
  python benchmarks/distill_speed_baseline.py [--rev aa51c63] [--rounds 2] [--steps 7]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs inside the subprocess, with PYTHONPATH at the tree to measure. argv[1]: JSON args.
_CHILD = r'''
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, numpy as np, tensorflow as tf
args = json.loads(sys.argv[1])
from pwavenet_tf.config import load_config
cfg = load_config(args["config"])
dc = cfg.distill
keras.utils.set_random_seed(0)
if args["api"] == "baseline":
    from pwavenet_tf.losses.power_loss import PowerLoss
    from pwavenet_tf.losses.spectral_loss import MultiResolutionSTFTLoss
    from pwavenet_tf.models.distiller import Distiller
    from pwavenet_tf.training.distill_task import build_student
    from pwavenet_tf.training.teacher_task import build_teacher
    teacher = build_teacher(cfg)
    hop = cfg.audio.hop_length
    teacher({"audio": np.zeros((1, 4 * hop), "float32"),
             "features": np.zeros((1, 4, cfg.audio.conditioning_dim), "float32")})
    teacher.trainable = False
    student = build_student(cfg)
    model = Distiller(
        student, teacher, num_kl_samples=dc.num_kl_samples, kl_weight=dc.kl_weight,
        power_weight=dc.power_weight, spectral_weight=dc.spectral_weight,
        perceptual_weight=0.0, contrastive_weight=dc.contrastive_weight,
        contrastive_gamma=dc.contrastive_gamma,
        power_loss=(PowerLoss(fft_sizes=dc.power_fft_sizes, log_floor=dc.power_log_floor)
                    if dc.power_weight > 0 else None),
        spectral_loss=(MultiResolutionSTFTLoss(dc.spectral_fft_sizes)
                       if dc.spectral_weight > 0 else None),
        perceptual_loss=None, seed=0)
    optimizer = keras.optimizers.Adam(dc.learning_rate, clipnorm=dc.clip_norm)
    model.compile(optimizer=optimizer)
    optimizer.build(student.trainable_variables)
else:
    from pwavenet_tf.benchmarks.training import build_stage
    model, _ = build_stage(cfg, "distill")
hop = cfg.audio.hop_length
batch, window = dc.batch_size, dc.window_samples // hop * hop
rng = np.random.default_rng(0)
audio = (0.1 * rng.standard_normal((batch, window))).clip(-1, 1).astype("float32")
features = rng.standard_normal((batch, window // hop, cfg.audio.conditioning_dim))
data = tf.data.Dataset.from_tensors(
    ({"audio": audio, "features": features.astype("float32")}, audio)).repeat()

# Its own step timer, like pwavenet_tf.benchmarks.training's: the baseline tree predates
# that module, and both variants must be timed by the same code.
class Times(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []
    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()
    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)

times = Times()
model.fit(data, steps_per_epoch=args["warmup"], epochs=1, verbose=0, callbacks=[times])
times.seconds.clear()
model.fit(data, steps_per_epoch=args["steps"], epochs=1, verbose=0, callbacks=[times])
print("RESULT " + json.dumps({"seconds": times.seconds, "samples": batch * window,
                              "student_params": int(student.count_params()
                                                    if args["api"] == "baseline"
                                                    else model.student.count_params())}))
'''


def _worktree(rev, tmp):
    path = os.path.join(tmp, "baseline")
    subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", path, rev], check=True,
                   capture_output=True)
    return path


def _measure(tree, api, config, steps, warmup):
    env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL="3")
    args = json.dumps({"api": api, "config": config, "steps": steps, "warmup": warmup})
    proc = subprocess.run([sys.executable, "-c", _CHILD, args], cwd=tree, env=env,
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{api} run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="aa51c63", help="the baseline revision")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="pwavenet_baseline_")
    try:
        base = _worktree(args.rev, tmp)
        old_config = os.path.join(base, "pwavenet_tf", "resources", "configs",
                                  "ljspeech_mini.json")
        variants = {
            "baseline": (base, "baseline", old_config),
            "current": (REPO, "current", "ljspeech_mini"),
            "current-old-recipe": (REPO, "current", old_config),
        }
        seconds = {name: [] for name in variants}
        info = {}
        for r in range(args.rounds):
            for name, (tree, api, config) in variants.items():
                out = _measure(tree, api, config, args.steps, args.warmup)
                seconds[name] += out["seconds"]
                info[name] = out
                print(f"round {r + 1} {name}: median "
                      f"{statistics.median(out['seconds']):.3f} s/step", flush=True)
    finally:
        subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force",
                        os.path.join(tmp, "baseline")], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    results = {}
    base_rate = None
    print(f"\n| code (config) | step, median [min, max] | training samples/s | vs {args.rev} |")
    print("|---|---|---|---|")
    for name in variants:
        med = statistics.median(seconds[name])
        rate = info[name]["samples"] / med
        base_rate = base_rate or rate
        results[name] = {"median_s": med, "min_s": min(seconds[name]),
                         "max_s": max(seconds[name]), "samples_per_s": rate,
                         "ratio": rate / base_rate,
                         "student_params": info[name]["student_params"]}
        print(f"| {name} | {med:.3f} s [{min(seconds[name]):.3f}, {max(seconds[name]):.3f}] | "
              f"{rate:,.0f} | {rate / base_rate:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rev": args.rev, "steps": args.steps, "rounds": args.rounds,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
