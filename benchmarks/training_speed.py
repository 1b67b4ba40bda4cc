"""Training speed of both stages (issue 10, sections 3 and 6): graph mode vs XLA
(`--jit-compile`) vs bfloat16 (`--mixed-precision bfloat16`) vs both, at the
`ljspeech_mini` shape, through the real commands. Prints; asserts nothing.

For each variant, `pwavenet train-teacher` (and `pwavenet distill` from the bundled
preset's teacher) runs `--steps` steps on the mini clips with checkpoints (so Keras
epochs) every `--epoch-steps` steps, in a fresh process; Keras prints each epoch's time
per step, and the figure is the median over the epochs after the first (the first holds
tracing / XLA compilation). Training samples/s = batch x window / step time.

Run: python benchmarks/training_speed.py [--steps 40] [--epoch-steps 10]
     [--stages teacher distill] [--variants graph xla bf16 bf16+xla]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("PWAVENET_TEST_DATA",
                      os.path.join(os.path.dirname(REPO), "shared", "data", "ljspeech-mini"))
VARIANTS = {"graph": [], "xla": ["--jit-compile"],
            "bf16": ["--mixed-precision", "bfloat16"],
            "bf16+xla": ["--mixed-precision", "bfloat16", "--jit-compile"]}
# Keras' epoch line: "10/10 - 7s - 700ms/step" (under 1 s a step) or "10/10 - 21s - 2s/step".
_EPOCH = re.compile(r"(\d+)/\d+ - (\d+)s - (\d+)(ms|s)/step")


def _config(tmp, section, epoch_steps):
    from pwavenet_tf.config import load_config

    cfg = load_config("ljspeech_mini").to_dict()
    cfg[section]["checkpoint_every"] = epoch_steps
    cfg[section]["keep_checkpoints"] = 1
    path = os.path.join(tmp, f"{section}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path, cfg[section]["batch_size"] * cfg[section]["window_samples"]


def _run(argv):
    proc = subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", *argv], capture_output=True,
                          text=True, cwd=REPO)
    if proc.returncode:
        raise RuntimeError(f"pwavenet {argv[0]} failed:\n{proc.stderr[-3000:]}")
    # Whole seconds per step are too coarse: then the epoch's seconds / its steps.
    times = [float(v) / 1000.0 if unit == "ms" else float(epoch) / int(steps)
             for steps, epoch, v, unit in _EPOCH.findall(proc.stdout + proc.stderr)]
    if len(times) < 2:
        raise RuntimeError(f"no per-epoch step times in the output:\n{proc.stdout[-2000:]}")
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--epoch-steps", type=int, default=10)
    p.add_argument("--stages", nargs="+", default=["teacher", "distill"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = p.parse_args()

    from pwavenet_tf.benchmarks.speed import machine_info

    print(f"machine: {machine_info()}; data: {DATA}")
    print("| stage | variant | step time, median of epochs 2+ (s) | training samples/s | "
          "vs graph |")
    print("|---|---|---|---|---|")
    preset_teacher = os.path.join(REPO, "pwavenet_tf", "presets", "ljspeech_mini", "training",
                                  "teacher")
    with tempfile.TemporaryDirectory() as tmp:
        teacher_copy = os.path.join(tmp, "teacher")
        shutil.copytree(preset_teacher, teacher_copy)
        for stage in args.stages:
            section = "teacher_training" if stage == "teacher" else "distill"
            config, samples = _config(tmp, section, args.epoch_steps)
            base = None
            for variant in args.variants:
                out = os.path.join(tmp, f"{stage}_{variant}")
                if stage == "teacher":
                    argv = ["train-teacher", "--config", config, "--data", DATA]
                else:
                    argv = ["distill", "--teacher", teacher_copy, "--config", config,
                            "--data", DATA]
                times = _run(argv + ["--out", out, "--steps", str(args.steps),
                                     *VARIANTS[variant]])
                step = statistics.median(times[1:])
                base = base or step
                print(f"| {stage} | {variant} | {step:.3f} | {samples / step:,.0f} | "
                      f"{base / step:.2f}x |", flush=True)
                shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
