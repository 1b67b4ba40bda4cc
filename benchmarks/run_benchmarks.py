"""Regenerates BENCHMARKS.md: `pwavenet bench` for the tiny, ljspeech and paper configs, the
student CPU profile (`profile_student.py`), then the Markdown from the JSON results.

Each measurement runs in its own process (a fresh TensorFlow runtime and memory
high-water mark), one after the other. The settings per config are in SETTINGS: the
teacher is 100-1000x slower than the student, so it is measured on fewer samples (at
least one frame), and the paper-size naive teacher (minutes per run) only once at batch 1.

Usage (from the repository root):
  python benchmarks/run_benchmarks.py                      # measure all, write BENCHMARKS.md
  python benchmarks/run_benchmarks.py --configs tiny       # re-measure one config
  python benchmarks/run_benchmarks.py --render-only        # rebuild the Markdown only
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

CONFIGS = ("tiny", "ljspeech", "paper")
# `pwavenet bench` arguments per config.
SETTINGS = {
    "tiny": ["--seconds", "1.0", "--batch", "4", "--teacher-seconds", "0.1",
             "--naive-seconds", "0.01", "--repeats", "3"],
    "ljspeech": ["--seconds", "1.0", "--batch", "4", "--teacher-seconds", "0.025",
                 "--naive-seconds", "0.01", "--repeats", "3", "--naive-repeats", "2",
                 "--naive-max-batch", "1"],
    "paper": ["--seconds", "1.0", "--batch", "4", "--teacher-seconds", "0.0125",
              "--naive-seconds", "0.0125", "--repeats", "3", "--naive-repeats", "1",
              "--naive-max-batch", "1"],
}
PROFILE_ARGS = ["--config", "paper", "--seconds", "1.0", "--repeats", "3"]
# The paper's figures (van den Oord et al. 2017, Parallel WaveNet, on a P100 GPU, batch 1).
PAPER_TEACHER_SAMPLES_PER_S = 172
PAPER_STUDENT_SAMPLES_PER_S = 500_000


def run(cmd):
    print("$ " + " ".join(cmd), flush=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)


def measure(configs, results):
    os.makedirs(results, exist_ok=True)
    for name in configs:
        run([sys.executable, "-m", "pwavenet_tf.cli", "bench", "--config", name,
             *SETTINGS[name], "--json", os.path.join(results, f"{name}.json")])


def profile(results):
    run([sys.executable, os.path.join(HERE, "profile_student.py"), *PROFILE_ARGS,
         "--json", os.path.join(results, "profile_paper.json")])


# --------------------------------------------------------------------------- rendering


def _load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _n(x, digits=0):
    if x is None:
        return "–"
    if digits == "auto":
        digits = 0 if abs(x) >= 100 else (1 if abs(x) >= 10 else 2)
    return f"{x:,.{digits}f}"


def headline_rows(results):
    header = ["config", "sample rate", "student MMAC/sample", "student samples/s (b1)",
              "x real time", "GFLOP/s (% of peak)", "student samples/s (b4)",
              "teacher cached samples/s (b1)", "teacher naive samples/s (b1, steady state)",
              "speed-up vs cached / naive (b1)"]
    rows = []
    for name, r in results.items():
        s = r["summary"].get("batch_1", {})
        b = max((k for k in r["summary"]), key=lambda k: int(k.split("_")[1]))
        sb = r["summary"][b]
        frac = s.get("student_fraction_of_peak")
        naive = s.get("teacher_naive_samples_per_s")
        steady = s.get("teacher_naive_steady_state_samples_per_s")
        rows.append([
            f"`{name}`", f"{r['sample_rate']:,} Hz",
            f"{r['student']['macs_per_sample']['total'] / 1e6:.3g}",
            f"{_n(s.get('student_samples_per_s'))} ({s.get('student_best_phase')})",
            f"{s.get('student_times_real_time', 0):.2f}",
            f"{s.get('student_gflops', 0):.1f} ({100 * (frac or 0):.0f}%)",
            f"{_n(sb.get('student_samples_per_s'))} ({sb.get('student_best_phase')})",
            f"{_n(s.get('teacher_cached_samples_per_s'), 'auto')} "
            f"({s.get('teacher_cached_best_phase')})",
            f"{_n(naive, 'auto')} ({'~' + format(steady, '.2g') if steady else '–'})",
            f"{_n(s.get('speedup_vs_cached'))}x / {_n(s.get('speedup_vs_naive'))}x",
        ])
    return header, rows


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def render(results_dir, out_path):
    from pwavenet_tf.benchmarks.speed import format_markdown

    results = {}
    for name in CONFIGS:
        r = _load(os.path.join(results_dir, f"{name}.json"))
        if r:
            results[name] = r
    if not results:
        raise SystemExit(f"No results in {results_dir}: run without --render-only first.")
    prof = _load(os.path.join(results_dir, "profile_paper.json"))
    m = next(iter(results.values()))["machine"]
    loads = {n: r["machine"].get("load_average_at_start") for n, r in results.items()}
    shared = any(l and l[0] > m["cores"] * 0.75 for l in loads.values())

    lines = ["# Benchmarks", ""]
    lines.append(
        "Generation speed of the WaveNet teacher and the IAF student of each bundled config, "
        "measured by `pwavenet bench` (freshly initialised weights: speed does not depend on "
        "training). Regenerate everything with `python benchmarks/run_benchmarks.py` "
        "(about 20 minutes on 2 cores); the JSON results are in `benchmarks/results/`.")
    lines.append("")
    lines.append(
        f"**Machine:** {m['cpu']}, **{m['cores']} cores** ({', '.join(m['simd'])}), "
        f"TensorFlow {m['tensorflow']} on the CPU, {m['platform']}.")
    lines.append("")
    if shared:
        lines.append(
            "**The machine was shared while these were measured**: a training job and other "
            "work ran on the same 2 cores (load averages at the start of each run: "
            + ", ".join(f"{n} {l[0]:.1f}" for n, l in loads.items() if l)
            + "). Every figure is disturbed, by up to 2x between runs (see the min/max); "
            "treat them as lower bounds of what the code does on an idle machine.")
        lines.append("")
    lines.append(
        "Figures: medians of several timed runs after a warm-up, with [min, max]; samples/s "
        "counts all utterances of a batch; \"x real time\" is samples/s over the sample rate "
        "(> 1 is faster than real time); multiply-adds (MAC) per output sample are counted "
        "from the layer shapes (`pwavenet_tf/benchmarks/flops.py`: every matmul and "
        "convolution, the conditioning upsampler amortised per sample; 1 MAC = 2 FLOP); "
        "achieved GFLOP/s is samples/s x 2 x MAC/sample, and its fraction is of the float32 "
        "matmul peak measured in the same run (before and after the phases, the better of "
        "the two); peak RSS is the process's "
        "resident-memory high-water mark during the phase (reset per phase through "
        "`/proc/self/clear_refs`), with the phase's own increase in brackets.")
    lines.append("")
    lines += ["## Summary", ""]
    lines.append(_table(*headline_rows(results)))
    lines.append("")
    lines.append(
        f"The paper (P100 GPU, batch 1) reports {PAPER_TEACHER_SAMPLES_PER_S} samples/s for "
        f"the autoregressive teacher and over {PAPER_STUDENT_SAMPLES_PER_S:,} samples/s for "
        "the student, a ~3,000x speed-up. The teacher \"naive\" column measures the "
        "reference generator over the first samples only, where its window is still small; "
        "in brackets, the estimate for a full receptive-field window at the same FLOP/s.")
    lines.append("")

    if "paper" in results:
        p = results["paper"]["summary"].get("batch_1", {})
        peak = results["paper"].get("matmul", {}).get("peak_gflops")
        lines += ["## The student on CPU: where it stands", ""]
        need_gflops = 2 * results["paper"]["student"]["macs_per_sample"]["total"] \
            * results["paper"]["sample_rate"] / 1e9
        lines.append(
            f"Target: the paper configuration in real time at 24 kHz on 2 CPU cores "
            f"(24,000 samples/s), and at least half of the matmul peak in achieved FLOP/s. "
            f"At {results['paper']['student']['macs_per_sample']['total'] / 1e6:.2f} M "
            f"MAC per sample, real time needs {need_gflops:.0f} GFLOP/s, "
            + (f"{100 * need_gflops / peak:.0f}% of this machine's measured peak "
               f"({peak:.0f} GFLOP/s); half the peak means "
               f"{peak / 2 / (need_gflops / 24000):,.0f} samples/s. " if peak else "")
            + "Measured at batch 1: "
            f"**{_n(p.get('student_samples_per_s'))} samples/s "
            f"({p.get('student_times_real_time', 0):.2f}x real time), "
            f"{p.get('student_gflops', 0):.0f} GFLOP/s = "
            f"{100 * (p.get('student_fraction_of_peak') or 0):.0f}% of the peak** "
            f"({p.get('student_best_phase')}).")
        lines.append("")
        if prof:
            lines += render_profile(prof, results["paper"])

    for name, r in results.items():
        s = r["settings"]
        lines += [f"## `{name}` ({r['sample_rate']:,} Hz)", ""]
        lines.append(
            f"`pwavenet bench --config {name} {' '.join(SETTINGS.get(name, []))}`: student "
            f"{s['seconds']:g} s per run, cached teacher {s['teacher_seconds']:g} s, naive "
            f"teacher {s['naive_seconds']:g} s (rounded to whole frames); "
            f"{s['repeats']} timed runs after {s['warmup']} warm-up"
            + (f" ({s['naive_repeats']} for the naive teacher)" if s.get("naive_repeats")
               != s["repeats"] else "")
            + f". Float32 matmul peak: {r.get('matmul', {}).get('peak_gflops', 0):.1f} GFLOP/s. "
            f"Teacher: {r['teacher']['parameters']:,} parameters, receptive field "
            f"{r['teacher']['receptive_field']:,} samples; student: "
            f"{r['student']['parameters']:,} parameters.")
        lines.append("")
        lines.append(format_markdown(r))
        lines.append("")
    lines.append(f"_Generated {datetime.date.today().isoformat()} by "
                 "`benchmarks/run_benchmarks.py`._")
    kept = _hand_written(out_path)  # read before the file is rewritten
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n" + kept)
    print(f"wrote {out_path}")


def _hand_written(path):
    """What follows the generated part's closing `_Generated ..._` line in the existing
    file (the sections measured by other scripts and written by hand), kept as it is."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        text = f.read()
    marker = text.find("\n_Generated ")
    if marker < 0:
        return ""
    end = text.find("\n", marker + 1)
    return "" if end < 0 else text[end + 1:]


def render_profile(prof, bench=None):
    """The profile section (every number from profile_student.py's and bench's JSON)."""
    sys.path.insert(0, HERE)
    from profile_student import render as render_tables

    model = prof["block_ops_model_s"]
    total = sum(model.values())
    share = {k: v / total for k, v in model.items()}
    elementwise = sum(share.get(k, 0) for k in ("gate", "conditioning add",
                                                "residual add+scale"))
    products = sum(share.get(k, 0) for k in ("dilated_conv", "conditioning_proj",
                                             "residual_proj"))
    peak = prof["matmul"]["peak_gflops"]
    t = prof["samples"]
    ops_ = prof["block_ops"]
    c = 64  # the paper student's channels; gate 2c, filter 3 (checked below)
    convs = [e["best_s"] for k, e in ops_.items() if k.startswith("dilated_conv")]
    conv_gflops = 2 * t * 3 * c * 2 * c / min(convs) / 1e9
    conv_gflops_worst = 2 * t * 3 * c * 2 * c / max(convs) / 1e9
    cond_gflops = 2 * t * c * 2 * c / ops_["conditioning_proj"]["best_s"] / 1e9
    res_gflops = 2 * t * c * c / ops_["residual_proj"]["best_s"] / 1e9
    whole = prof["whole"]
    alt = prof.get("alternatives", {})
    base_name = max(whole, key=lambda k: whole[k]["samples_per_s"])
    base = whole[base_name]["samples_per_s"]

    def sps(d, k):
        return d.get(k, {}).get("samples_per_s")

    def rel(x):
        return f"{x / base:.2f}x"

    lines = ["### Profile", "",
             "`python benchmarks/profile_student.py --config paper` times the student's "
             "pass, its parts, and each operation of a residual block alone at the block's "
             "shapes, multiplied by its count over the 60 blocks. It ran right after the "
             "benchmarks above, in its own process; on this shared machine the difference "
             "between its figures and the bench run's is the size of the noise.",
             "", render_tables(prof), "", "### What limits it", ""]
    lines.append(
        f"- **The products take {100 * products:.0f}% of the time.** The dilated convolutions "
        f"take "
        f"{100 * share.get('dilated_conv', 0):.0f}% of the modelled block time and run at "
        f"{conv_gflops_worst:.0f}-{conv_gflops:.0f} GFLOP/s alone "
        f"({100 * conv_gflops_worst / peak:.0f}-{100 * conv_gflops / peak:.0f}% of the "
        f"peak); the conditioning projection ({100 * share.get('conditioning_proj', 0):.0f}%,"
        f" {cond_gflops:.0f} GFLOP/s) and the residual projection "
        f"({100 * share.get('residual_proj', 0):.0f}%, {res_gflops:.0f} GFLOP/s) are "
        "products with only 64 inputs per output and run further from the peak.")
    lines.append(
        f"- **Memory-bound elementwise work is the rest**: adding the conditioning, the "
        f"tanh x sigmoid gate, the residual add and scale take {100 * elementwise:.0f}% "
        "with no multiply-adds at all. At 1 s of 24 kHz audio each [T, 128] float32 "
        "activation is 12 MB, beyond the caches, so each of these passes streams through "
        "main memory.")
    b1 = {}
    xla_note = (f"XLA (which fuses the elementwise passes) gave {_n(sps(whole, 'xla'))} "
                f"vs {_n(sps(whole, 'graph'))} samples/s in graph mode in the profile")
    if bench:
        b1 = {k: p for k, p in bench["student"]["phases"].items() if p["batch"] == 1}
        if "xla_b1" in b1 and "graph_b1" in b1:
            xla_note += (f", and {_n(b1['xla_b1']['samples_per_s']['median'])} vs "
                         f"{_n(b1['graph_b1']['samples_per_s']['median'])} in the bench run")
    wins = [sps(whole, "xla") > sps(whole, "graph")]
    if bench and "xla_b1" in b1 and "graph_b1" in b1:
        wins.append(b1["xla_b1"]["samples_per_s"]["median"]
                    > b1["graph_b1"]["samples_per_s"]["median"])
    verdict = ("XLA is faster in every run" if all(wins) else
               "graph mode is faster in every run: XLA's fusion does not pay for itself "
               "on this CPU at these sizes" if not any(wins) else
               "neither wins consistently under this noise")
    lines.append(f"- **Graph mode vs XLA**: {xla_note}; {verdict}.")
    if alt:
        lines.append(
            "- **Alternative formulations** (same weights, outputs checked against the "
            f"model's), relative to the model's best pass here ({base_name}, {_n(base)} "
            "samples/s): "
            + "; ".join(f"{k} {_n(v['samples_per_s'])} ({rel(v['samples_per_s'])}, best run "
                        f"{_n(v['samples_per_s_best'])})" for k, v in alt.items())
            + ". Fused taps do the dilated convolution and the conditioning projection as "
            "one matmul of the concatenated taps [x(t-2d), x(t-d), x(t), c(t)]; tiled "
            "streams each flow over 2,048-sample tiles with per-layer queues of the last "
            "(k-1)d inputs (exact, working set in cache); mixed_bfloat16 runs the products "
            "in bfloat16.")
    lines += ["", "### Where it stands", ""]
    if bench:
        p1 = bench["summary"].get("batch_1", {})
        lines.append(
            f"In the bench run the paper student reached {_n(p1.get('student_samples_per_s'))} "
            f"samples/s at batch 1 ({p1.get('student_times_real_time', 0):.2f}x real time, "
            f"{100 * (p1.get('student_fraction_of_peak') or 0):.0f}% of the peak); in the "
            f"profile run, {_n(base)} samples/s ({base / 24000:.2f}x real time, "
            f"{100 * whole[base_name]['fraction_of_peak']:.0f}% of that run's peak of "
            f"{peak:.0f} GFLOP/s). Real time needs about "
            f"{2 * prof['macs_per_sample'] * 24000 / 1e9:.0f} GFLOP/s. So the student is "
            f"between {min(p1.get('student_times_real_time', 0), base / 24000):.2f}x and "
            f"{max(p1.get('student_times_real_time', 0), base / 24000):.2f}x real time on "
            "this machine depending on what else runs, at roughly half of the matmul peak "
            "when measured against a peak taken at the same time. What would move it "
            "further (changes to the model code; the fused-taps and tiled passes are "
            "prototyped in `profile_student.py`, the others are not): fewer "
            "passes over memory per block (fuse bias, conditioning add, gate and residual "
            "into the products' epilogues, which XLA's fusion attempts but, measured here, "
            "without a net gain), wider products for the "
            "64-input projections (all blocks' conditioning projections of a flow as one "
            "[T, 64] x [64, 128 x blocks] matmul per chunk), and the tiled streaming pass, "
            "which also bounds memory for long inputs without the chunked generator's "
            "recomputed context."
            + (f" bfloat16 products were {rel(sps(alt, 'mixed_bfloat16 graph'))} the float32 "
               "speed in graph mode here; a trained student must be checked with `pwavenet "
               "evaluate` before using them." if "mixed_bfloat16 graph" in alt else ""))
    lines.append("")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--results", default=os.path.join(HERE, "results"),
                   help="folder of the JSON results (default benchmarks/results)")
    p.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    p.add_argument("--render-only", action="store_true", help="only rebuild the Markdown")
    p.add_argument("--no-profile", action="store_true", help="skip profile_student.py")
    args = p.parse_args(argv)
    if not args.render_only:
        measure(args.configs, args.results)
        if not args.no_profile:
            profile(args.results)
    render(args.results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
