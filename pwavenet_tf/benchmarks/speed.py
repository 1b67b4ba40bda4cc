"""Generation speed behind `pwavenet bench`: `benchmark_config(config, ...)` measures the
teacher and the student of one config (the phases that `pwavenet bench` prints) and
returns a JSON-able dict; `format_text` / `format_markdown` print it. The measurement
primitives (timings, the matmul peak, peak memory, the machine) are in `measure`;
training steps are measured by `training`.
"""

import gc

import numpy as np

from pwavenet_tf.benchmarks.measure import (  # noqa: F401  (re-exported for callers)
    PeakMemory,
    Timing,
    current_rss_mb,
    machine_info,
    matmul_peak,
    time_runs,
)


# --------------------------------------------------------------------------- one config


def _frames_for(seconds, sample_rate, hop):
    return max(1, int(round(seconds * sample_rate / hop)))


def _features(batch, frames, dim, seed=0):
    """Plausible raw log-mel-like features (the models normalise them)."""
    rng = np.random.default_rng(seed)
    return rng.normal(-5.0, 2.0, size=(batch, frames, dim)).astype("float32")


def benchmark_config(config, seconds=1.0, batch=4, teacher_seconds=None, naive_seconds=None,
                     repeats=3, warmup=1, xla=True, naive=True, teacher=True, student=True,
                     naive_repeats=None, naive_max_batch=None, matmul_sizes=(512, 1024, 2048),
                     log=print, precision="float32"):
    """Measures the teacher and the student of `config` (untrained weights) in this process.

    Args:
        config: a `pwavenet_tf.config.Config`.
        seconds: audio generated per run by the student (rounded to whole frames).
        batch: the larger batch size (batch 1 is always measured too).
        teacher_seconds: audio per run for the cached teacher (default: `seconds`); the
            teacher is 100-1000x slower, so measure it on fewer samples.
        naive_seconds: audio per run for the naive teacher (default: `teacher_seconds`).
            The naive generator's window grows until the receptive field is full; the
            report gives the mean window of the measured run and a steady-state estimate.
        repeats, warmup: timed runs and untimed warm-up runs of every phase.
        xla: also measure the XLA-compiled generators.
        naive_repeats: timed runs of the naive teacher (default `repeats`); one naive run
            of the paper teacher takes minutes.
        naive_max_batch: measure the naive teacher only at batch sizes up to this.
        naive, teacher, student: which models/methods to measure.
        matmul_sizes: matrix sizes of the matmul peak measurement (empty: skip it).
        log: progress printer.
        precision: the student's compute precision, `float32` or `bfloat16`
            (`student_with_precision`); the teacher is measured in float32.

    Returns:
        A JSON-able dict: `machine`, `config`, `settings`, `matmul`, `teacher`
        (`macs_per_sample`, `phases`), `student` (same), `summary`.
        Every phase has `samples_per_s` (median/min/max over the timed runs, counting
        all samples of the batch), `real_time_factor` (median), `gflops` (achieved,
        median), `fraction_of_peak` and `memory`.
    """
    import tensorflow as tf

    from pwavenet_tf.benchmarks import flops
    from pwavenet_tf.models.iaf_student import IAFStudent
    from pwavenet_tf.models.student_generator import StudentGenerator
    from pwavenet_tf.models.teacher_generator import TeacherGenerator
    from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher

    from pwavenet_tf.models.student_precision import check_precision, student_with_precision

    check_precision(precision)
    if batch < 1:
        raise ValueError(f"`batch` must be >= 1. Received: batch={batch}")
    for name, v in (("seconds", seconds), ("teacher_seconds", teacher_seconds),
                     ("naive_seconds", naive_seconds)):
        if v is not None and not v > 0:
            raise ValueError(f"`{name}` must be > 0. Received: {name}={v}")
    sr = config.audio.sample_rate
    hop = config.audio.hop_length
    dim = config.audio.conditioning_dim
    teacher_seconds = seconds if teacher_seconds is None else teacher_seconds
    naive_seconds = teacher_seconds if naive_seconds is None else naive_seconds
    batches = sorted({1, int(batch)})
    multi = config.audio.num_speakers > 1

    out = {"machine": machine_info(), "config": config.name,
           "sample_rate": sr, "hop_length": hop,
           "settings": {"seconds": seconds, "teacher_seconds": teacher_seconds,
                        "naive_seconds": naive_seconds, "batch": batch, "repeats": repeats,
                        "warmup": warmup, "xla": xla,
                        "naive_repeats": repeats if naive_repeats is None else naive_repeats,
                        "naive_max_batch": naive_max_batch, "student_precision": precision}}
    log(f"[{config.name}] machine: {out['machine']['cpu']}, {out['machine']['cores']} cores")

    if matmul_sizes:
        with PeakMemory() as mem:
            out["matmul"] = matmul_peak(matmul_sizes, repeats=max(repeats, 3), warmup=warmup)
        out["matmul"]["memory"] = mem.to_dict()
        log(f"[{config.name}] float32 matmul peak: {out['matmul']['peak_gflops']:.1f} GFLOP/s")
    peak = out.get("matmul", {}).get("peak_gflops")

    def record(phase, frames, b, method_macs, fn, model_name, n_repeats=None):
        samples = b * frames * hop
        n_repeats = repeats if n_repeats is None else n_repeats
        with PeakMemory() as mem:
            timing, audio = time_runs(fn, warmup=warmup, repeats=n_repeats)
        audio = np.asarray(audio)
        if audio.shape != (b, frames * hop) or not np.all(np.isfinite(audio)):
            raise RuntimeError(f"{model_name} {phase} returned audio of shape {audio.shape} "
                               f"(expected {(b, frames * hop)}) or non-finite values.")
        rate = timing.rate(samples)
        gflops = rate["median"] * 2.0 * method_macs / 1e9
        entry = {
            "phase": phase, "batch": b, "frames": frames, "samples_per_run": samples,
            "audio_seconds_per_run": frames * hop / sr,
            "samples_per_s": rate, "timing": timing.to_dict(),
            # Seconds of compute per second of audio, all utterances of the batch counted.
            "real_time_factor": sr / rate["median"],
            "macs_per_sample": method_macs,
            "gflops": gflops,
            "fraction_of_peak": None if not peak else gflops / peak,
            "memory": mem.to_dict(),
        }
        log(f"[{config.name}] {model_name:7s} {phase:13s} batch {b}: "
            f"{rate['median']:>12,.0f} samples/s (min {rate['min']:,.0f}, max "
            f"{rate['max']:,.0f}), {gflops:.2f} GFLOP/s, peak RSS {mem.peak_rss_mb:,.0f} MB")
        return entry

    speaker = (lambda b: np.zeros([b], "int32")) if multi else (lambda b: None)

    if teacher:
        t_model = WaveNetTeacher.from_pwavenet_config(config)
        cached_macs = flops.teacher_macs_per_sample(t_model)
        tinfo = {"parameters": int(t_model.count_params()),
                 "receptive_field": t_model.receptive_field,
                 "macs_per_sample": cached_macs, "phases": {}}
        out["teacher"] = tinfo
        methods = []
        if naive:
            methods.append(("naive", "naive", False, naive_seconds))
        methods.append(("cached_graph", "cached", False, teacher_seconds))
        if xla:
            methods.append(("cached_xla", "cached", True, teacher_seconds))
        generators = {}
        for phase, method, jit, secs in methods:
            frames = _frames_for(secs, sr, hop)
            gen = generators.setdefault(jit, TeacherGenerator(t_model, jit_compile=jit))
            if method == "naive":
                window = flops.naive_mean_window(t_model, frames * hop)
                macs = flops.teacher_macs_per_sample(t_model, naive_window=window)["total"]
            else:
                macs = cached_macs["total"]
            for b in batches:
                if method == "naive" and naive_max_batch and b > naive_max_batch:
                    continue
                feats = tf.constant(_features(b, frames, dim))
                spk = speaker(b)

                def run(gen=gen, feats=feats, spk=spk, method=method):
                    return gen.generate(feats, spk, seed=(0, 0), method=method).numpy()

                entry = record(phase, frames, b, macs, run, "teacher",
                               n_repeats=naive_repeats if method == "naive" else None)
                if method == "naive":
                    # Steady state: every step recomputes receptive_field + 1 positions.
                    steady = flops.teacher_macs_per_sample(
                        t_model, naive_window=t_model.receptive_field + 1)["total"]
                    entry["mean_window"] = window
                    entry["steady_state_window"] = t_model.receptive_field + 1
                    entry["steady_state_samples_per_s_estimate"] = (
                        entry["samples_per_s"]["median"] * macs / steady)
                tinfo["phases"][f"{phase}_b{b}"] = entry
        del generators, t_model
        gc.collect()

    if student:
        s_model = student_with_precision(IAFStudent.from_pwavenet_config(config), precision)
        smacs = flops.student_macs_per_sample(s_model)
        sinfo = {"parameters": int(s_model.count_params()),
                 "receptive_field": s_model.receptive_field,
                 "macs_per_sample": smacs, "phases": {}}
        out["student"] = sinfo
        gen = StudentGenerator(s_model)
        frames = _frames_for(seconds, sr, hop)
        modes = [("graph", False)] + ([("xla", True)] if xla else [])
        for phase, jit in modes:
            for b in batches:
                feats = tf.constant(_features(b, frames, dim))
                spk = speaker(b)

                def run(feats=feats, spk=spk, jit=jit):
                    return gen.generate(feats, spk, seed=(0, 0), jit_compile=jit).numpy()

                sinfo["phases"][f"{phase}_b{b}"] = record(phase, frames, b, smacs["total"], run,
                                                          "student")

    if matmul_sizes:
        # The peak again at the end: on a shared machine either measurement can be
        # disturbed; the machine's peak is the better of the two.
        end = matmul_peak(matmul_sizes, repeats=max(repeats, 3), warmup=warmup)
        out["matmul"]["peak_gflops_start"] = out["matmul"]["peak_gflops"]
        out["matmul"]["peak_gflops_end"] = end["peak_gflops"]
        out["matmul"]["sizes_end"] = end["sizes"]
        peak = max(out["matmul"]["peak_gflops_start"], end["peak_gflops"])
        out["matmul"]["peak_gflops"] = peak
        out["matmul"]["method"] += "; measured before and after the phases, the better kept"
        for model in ("teacher", "student"):
            for p in out.get(model, {}).get("phases", {}).values():
                p["fraction_of_peak"] = p["gflops"] / peak
        log(f"[{config.name}] float32 matmul peak at the end: {end['peak_gflops']:.1f} "
            f"GFLOP/s (used: {peak:.1f})")
    out["summary"] = summarize(out)
    return out


def _best(phases, prefix, batch):
    """The fastest phase among those whose key starts with one of `prefix` at `batch`."""
    found = [p for k, p in phases.items()
             if k.startswith(prefix) and p["batch"] == batch]
    return max(found, key=lambda p: p["samples_per_s"]["median"]) if found else None


def summarize(result):
    """Headline figures of a `benchmark_config` result (batch 1 and the larger batch)."""
    sr = result["sample_rate"]
    summary = {}
    t = result.get("teacher", {}).get("phases", {})
    s = result.get("student", {}).get("phases", {})
    batches = sorted({p["batch"] for p in list(t.values()) + list(s.values())})
    for b in batches:
        st = _best(s, ("graph", "xla"), b)
        naive = _best(t, ("naive",), b)
        cached = _best(t, ("cached",), b)
        row = {}
        if st:
            sps = st["samples_per_s"]["median"]
            row.update({
                "student_best_phase": st["phase"],
                "student_samples_per_s": sps,
                "student_real_time_factor": st["real_time_factor"],
                "student_times_real_time": sps / sr,
                "student_gflops": st["gflops"],
                "student_fraction_of_peak": st["fraction_of_peak"],
            })
        if cached:
            row["teacher_cached_best_phase"] = cached["phase"]
            row["teacher_cached_samples_per_s"] = cached["samples_per_s"]["median"]
            row["teacher_cached_real_time_factor"] = cached["real_time_factor"]
        if naive:
            row["teacher_naive_samples_per_s"] = naive["samples_per_s"]["median"]
            row["teacher_naive_steady_state_samples_per_s"] = naive.get(
                "steady_state_samples_per_s_estimate")
        if st and cached:
            row["speedup_vs_cached"] = row["student_samples_per_s"] / row[
                "teacher_cached_samples_per_s"]
        if st and naive:
            row["speedup_vs_naive"] = row["student_samples_per_s"] / row[
                "teacher_naive_samples_per_s"]
            est = row.get("teacher_naive_steady_state_samples_per_s")
            if est:
                row["speedup_vs_naive_steady_state"] = row["student_samples_per_s"] / est
        summary[f"batch_{b}"] = row
    return summary


# --------------------------------------------------------------------------- tables


def _rows(result):
    """(model, phase entry) in display order."""
    for model in ("teacher", "student"):
        for key, p in result.get(model, {}).get("phases", {}).items():
            yield model, p


def _num(x, digits=0):
    if x is None:
        return "-"
    if digits == "auto":
        digits = 0 if abs(x) >= 100 else (1 if abs(x) >= 10 else 2)
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def _rate_cell(p):
    r = p["samples_per_s"]
    digits = 0 if r["median"] >= 100 else (1 if r["median"] >= 10 else 2)
    return f"{_num(r['median'], digits)} [{_num(r['min'], digits)}, {_num(r['max'], digits)}]"


def table_rows(result):
    """Header and rows (strings) of the per-phase table."""
    header = ["model", "phase", "batch", "audio/run (s)", "samples/s median [min, max]",
              "x real time", "MMAC/sample", "GFLOP/s", "% of peak", "peak RSS MB (+phase)"]
    sr = result["sample_rate"]
    rows = []
    for model, p in _rows(result):
        phase = p["phase"]
        if phase == "naive":
            phase += f" (window {p['mean_window']:.0f})"
        frac = p.get("fraction_of_peak")
        mem = p["memory"]
        inc = mem.get("phase_increase_mb")
        rows.append([
            model, phase, str(p["batch"]), f"{p['audio_seconds_per_run']:.3f}", _rate_cell(p),
            f"{p['samples_per_s']['median'] / sr:.3g}",
            f"{p['macs_per_sample'] / 1e6:.3g}", f"{p['gflops']:.2f}",
            "-" if frac is None else f"{100 * frac:.1f}",
            f"{_num(mem['peak_rss_mb'])} (+{_num(inc)})",
        ])
    return header, rows


def summary_lines(result):
    """Headline sentences of a result."""
    sr = result["sample_rate"]
    lines = []
    t, s = result.get("teacher"), result.get("student")
    macs = []
    if t:
        macs.append(f"teacher {t['macs_per_sample']['total'] / 1e6:.3g} M per sample (cached "
                    f"step), receptive field {t['receptive_field']:,} samples")
    if s:
        macs.append(f"student {s['macs_per_sample']['total'] / 1e6:.3g} M per sample "
                    f"({len(s['macs_per_sample']['per_flow'])} flows)")
    if macs:
        lines.append("Multiply-adds: " + "; ".join(macs) + ".")
    for key, row in result.get("summary", {}).items():
        b = key.split("_")[1]
        parts = []
        if "student_samples_per_s" in row:
            frac = row.get("student_fraction_of_peak")
            parts.append(
                f"student ({row['student_best_phase']}) {_num(row['student_samples_per_s'])} "
                f"samples/s = {row['student_times_real_time']:.3g}x real time at {sr:,} Hz, "
                f"{row['student_gflops']:.1f} GFLOP/s"
                + ("" if frac is None else f" ({100 * frac:.0f}% of the matmul peak)"))
        if "teacher_cached_samples_per_s" in row:
            parts.append(f"teacher cached ({row['teacher_cached_best_phase']}) "
                         f"{_num(row['teacher_cached_samples_per_s'], 'auto')} samples/s")
        if "teacher_naive_samples_per_s" in row:
            est = row.get("teacher_naive_steady_state_samples_per_s")
            naive = _num(row["teacher_naive_samples_per_s"], "auto")
            parts.append(f"teacher naive {naive} samples/s"
                         + ("" if est is None else f" (steady state ~{est:.3g})"))
        if "speedup_vs_cached" in row:
            parts.append(f"student/teacher speed-up {row['speedup_vs_cached']:,.0f}x vs cached")
        if "speedup_vs_naive" in row:
            extra = row.get("speedup_vs_naive_steady_state")
            parts.append(f"{row['speedup_vs_naive']:,.0f}x vs naive"
                         + ("" if extra is None else f" (~{extra:,.0f}x at steady state)"))
        lines.append(f"Batch {b}: " + "; ".join(parts) + ".")
    return lines


def format_text(result):
    """A plain-text report of a `benchmark_config` result (what `pwavenet bench` prints)."""
    m = result["machine"]
    head = (f"pwavenet bench: config {result['config']} ({result['sample_rate']:,} Hz) on "
            f"{m['cpu']}, {m['cores']} cores, TensorFlow {m['tensorflow']}")
    peak = result.get("matmul", {}).get("peak_gflops")
    if peak:
        head += f"; float32 matmul peak {peak:.1f} GFLOP/s"
    header, rows = table_rows(result)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header))]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [head, "", fmt.format(*header)]
    lines += [fmt.format(*r) for r in rows]
    lines += [""] + summary_lines(result)
    s = result["settings"]
    lines.append(f"(median of {s['repeats']} timed runs after {s['warmup']} warm-up run(s); "
                 "samples/s counts every utterance of the batch; student in "
                 f"{s.get('student_precision', 'float32')})")
    return "\n".join(lines)


def format_markdown(result):
    """The per-phase table and headline lines of a result, as Markdown."""
    header, rows = table_rows(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [""] + summary_lines(result)
    return "\n".join(lines)
