"""Writing the evaluation report: `report.json`, `report.md` and spectrogram PNGs.

`report.json` holds every figure (see `pwavenet evaluate --help`); `report.md` renders
the tables from the same dict, so the two never disagree. Plots use matplotlib's Agg
backend (no display needed).
"""

import io
import json
import math
import os

import numpy as np

METRIC_SOURCES = ("student", "teacher", "griffin_lim")
SOURCE_TITLES = {"real": "Real", "teacher": "Teacher", "student": "Student",
                 "griffin_lim": "Griffin-Lim"}
DNSMOS_KEYS = ("p808_mos", "p835_sig", "p835_bak", "p835_ovrl")


def safe_name(clip_id):
    """A file name for a clip id (ids of nested folders contain '/')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in clip_id.replace("/", "__"))


def _finite_or_none(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o)}")


def _mean(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def _get(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def source_title(src):
    """The table title of a source (`student_seed3`: "Student (seed 3)")."""
    if src.startswith("student_seed"):
        return f"Student (seed {src[len('student_seed'):]})"
    return SOURCE_TITLES[src]


# The figures compared across the student's noise draws: (title, path under a source).
DRAW_FIGURES = (("p808_mos", ("dnsmos", "p808_mos")), ("p835_ovrl", ("dnsmos", "p835_ovrl")),
                ("wer_vs_real_asr", ("asr", "wer_vs_real_asr")), ("wer", ("asr", "wer")),
                ("mcd_db", ("whole", "mcd_db")), ("log_mel_l1", ("whole", "log_mel_l1")))


def draw_spread(avg, sources):
    """Per figure of `DRAW_FIGURES`, the clip average of each draw in `sources` (`values`,
    in order), their mean and sample standard deviation (`sd`, 0 for one draw). Figures no
    draw has are left out; a draw without one is skipped."""
    out = {}
    for name, (group, key) in DRAW_FIGURES:
        values = [_get(avg, (group, src, key)) for src in sources]
        values = [v for v in values if v is not None]
        if not values:
            continue
        mean = sum(values) / len(values)
        var = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)
               if len(values) > 1 else 0.0)
        out[name] = {"values": values, "mean": mean, "sd": math.sqrt(var)}
    return out


def average(clips):
    """Means over clips of every numeric leaf of the per-clip dicts (None when absent)."""
    paths = set()

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, prefix + (k,))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                paths.add(prefix + (k,))

    for c in clips:
        walk(c, ())
    out = {}
    for path in sorted(paths):
        value = _mean([_get(c, path) for c in clips])
        node = out
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = value
    return out


# --------------------------------------------------------------------------- markdown


def _fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def _table_text(text, limit=120):
    """Free text for a table cell: pipes escaped, cut to `limit` characters, "–" if empty."""
    if not text:
        return "–"
    text = text.replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report):
    """The `report.md` text of a report dict."""
    s = report["settings"]
    clips = report["clips"]
    avg = report["average"]
    lines = [f"# Resynthesis evaluation: `{report['model_name']}`", ""]
    lines.append(
        f"Model: `{report['model_dir']}` ({report['role']}), config `{report['config']}`, "
        f"{report['sample_rate']} Hz. Teacher: "
        + (f"`{report['teacher_dir']}`" if report.get("teacher_dir") else "none")
        + f". Data: `{report['data_dir']}`, {len(clips)} clip(s)."
    )
    lines.append("")
    lines.append(
        "Every clip is resynthesized from its own log-mel features. Metrics compare with the "
        "real audio through the model's front end, frames aligned one to one: log-mel L1 "
        "(mean |difference| of natural-log mel magnitudes) and mel-cepstral distortion "
        f"(dB, c1..c{s['mcd_coefficients']}, c0 excluded). Lower is better. Griffin-Lim "
        f"({s['griffin_lim_iters']} iterations from the pseudo-inverted mel) is the reference "
        "floor: a vocoder should beat it. Teacher NLL is in bits per sample on the real "
        "audio (16.0 = uniform over 16-bit values)."
    )
    lines.append("")
    if s.get("teacher_seconds") is not None and report.get("teacher_dir"):
        lines.append(
            f"The teacher generates one sample at a time, so it resynthesizes only the first "
            f"{s['teacher_seconds']:g} s of each clip; the second table compares all "
            "vocoders on that span."
        )
        lines.append("")

    lines += ["## Whole clips", ""]
    header = ["Clip", "Seconds", "Teacher NLL (bits)", "Student L1", "Student MCD (dB)",
              "Griffin-Lim L1", "Griffin-Lim MCD (dB)", "Student samples/s"]

    # The teacher has whole-clip figures only when its span covered every clip.
    whole_teacher = all(_get(c, ("whole", "teacher")) for c in clips)
    if whole_teacher:
        header[3:3] = ["Teacher L1", "Teacher MCD (dB)"]

    def whole_row(name, c):
        teacher = ([_fmt(_get(c, ("whole", "teacher", "log_mel_l1"))),
                    _fmt(_get(c, ("whole", "teacher", "mcd_db")), 2)] if whole_teacher else [])
        return [name, _fmt(c.get("seconds"), 2), _fmt(c.get("teacher_nll_bits_per_sample"))
                ] + teacher + [
                _fmt(_get(c, ("whole", "student", "log_mel_l1"))),
                _fmt(_get(c, ("whole", "student", "mcd_db")), 2),
                _fmt(_get(c, ("whole", "griffin_lim", "log_mel_l1"))),
                _fmt(_get(c, ("whole", "griffin_lim", "mcd_db")), 2),
                _fmt(_get(c, ("speed", "student", "samples_per_s")))]

    rows = [whole_row(f"`{c['id']}`", c) for c in clips] + [whole_row("**mean**", avg)]
    lines += [_table(header, rows), ""]

    if any(_get(c, ("teacher_span", "teacher")) for c in clips):
        lines += [f"## First {s['teacher_seconds']:g} s (teacher span)", ""]
        header = ["Clip", "Seconds", "Teacher L1", "Teacher MCD (dB)", "Student L1",
                  "Student MCD (dB)", "Griffin-Lim L1", "Griffin-Lim MCD (dB)",
                  "Teacher samples/s"]

        def span_row(name, c):
            return [name, _fmt(_get(c, ("teacher_span", "seconds")), 2)] + [
                _fmt(_get(c, ("teacher_span", src, key)), 3 if key == "log_mel_l1" else 2)
                for src in ("teacher", "student", "griffin_lim")
                for key in ("log_mel_l1", "mcd_db")
            ] + [_fmt(_get(c, ("speed", "teacher", "samples_per_s")))]

        rows = [span_row(f"`{c['id']}`", c) for c in clips] + [span_row("**mean**", avg)]
        lines += [_table(header, rows), ""]

    if any(c.get("dnsmos") for c in clips):
        lines += ["## DNSMOS", "",
                  "Non-intrusive MOS predictions (1-5, higher is better): P.808 overall and "
                  "P.835 SIG (speech), BAK (background), OVRL (overall). The teacher's audio "
                  "is its span only (DNSMOS repeats clips shorter than 9 s).", ""]
        header = ["Clip", "Audio", "P.808", "SIG", "BAK", "OVRL"]
        rows = []
        for name, c in [(f"`{c['id']}`", c) for c in clips] + [("**mean**", avg)]:
            for src in ("real", "teacher", "student", "griffin_lim"):
                d = _get(c, ("dnsmos", src))
                if d:
                    rows.append([name, source_title(src)]
                                + [_fmt(d.get(k), 2) for k in DNSMOS_KEYS])
        lines += [_table(header, rows), ""]

    if any(c.get("asr") for c in clips):
        lines += ["## Intelligibility (speech recognizer)", "",
                  "Word error rate (WER: word substitutions + deletions + insertions over the "
                  "reference's words; 0 is perfect, 1 is nothing right) of an offline "
                  "recognizer (PocketSphinx, default US-English model) on each audio, against "
                  "the clip's transcript where the corpus has one, and against the "
                  "recognizer's own text of the real audio (so the recognizer's errors on "
                  "real speech are not counted against the vocoder). A proxy for "
                  "intelligibility: a small recognizer, no listening test.", ""]
        header = ["Clip", "Audio", "WER vs. transcript", "WER vs. ASR of real",
                  "Recognized text"]
        rows = []
        for name, c in [(f"`{c['id']}`", c) for c in clips] + [("**mean**", avg)]:
            for src in ("real", "teacher", "student", "griffin_lim"):
                d = _get(c, ("asr", src))
                if d:
                    rows.append([name, source_title(src), _fmt(d.get("wer"), 2),
                                 _fmt(d.get("wer_vs_real_asr"), 2),
                                 _table_text(d.get("text"))])
        lines += [_table(header, rows), ""]

    if report.get("stationary_lines"):
        lines += ["## Stationary lines", "",
                  "Long-term average spectra (4,096-point Welch) of each resynthesis against "
                  "its real clip: the strongest narrow line rising above the resynthesis's "
                  "own broadband mismatch, averaged over the clips (a tone the vocoder adds to "
                  "every clip; Griffin-Lim's chance peaks average to about 5 dB), the mean "
                  "excess below 20 Hz (a DC offset or drift) and the mean sample value. Real "
                  "speech has none of these.", ""]
        header = ["Audio", "Strongest line (dB)", "at (Hz)", "Below 20 Hz (dB)",
                  "Mean sample"]
        rows = [[source_title(src), _fmt(d["line_db"], 1), _fmt(d["line_hz"], 1),
                 _fmt(d["low_band_excess_db"], 1), _fmt(d["dc_offset"], 4)]
                for src, d in report["stationary_lines"].items()]
        lines += [_table(header, rows), ""]

    if report.get("student_draws"):
        draws = report["student_draws"]
        n = max(len(d["values"]) for d in draws.values())
        lines += ["## The student over noise draws", "",
                  f"The student's clip averages for {n} noise seeds ({s['seed']} .. "
                  f"{s['seed'] + n - 1}; the tables above are seed {s['seed']}): how much "
                  "one draw moves each figure. Differences between two students smaller than "
                  "about two standard deviations are within what the noise alone does.", ""]
        header = ["Figure", "Mean", "Std. dev.", "Per seed"]
        rows = [[name, _fmt(d["mean"]), _fmt(d["sd"]),
                 ", ".join(_fmt(v) for v in d["values"])] for name, d in draws.items()]
        lines += [_table(header, rows), ""]

    lines += ["## Generation speed", "",
              f"On this machine ({report.get('machine', 'unknown')}), batch 1, after a warm-up; "
              "samples/s of generated audio and the real-time factor (compute seconds per "
              "second of audio).", ""]
    header = ["Model", "Mean samples/s", "Mean real-time factor"]
    rows = []
    for src in ("student", "teacher"):
        sp = _get(avg, ("speed", src))
        if sp:
            rows.append([source_title(src), _fmt(sp.get("samples_per_s")),
                         _fmt(sp.get("real_time_factor"), 3)])
    lines += [_table(header, rows), ""]

    if report.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]

    plots = [c for c in clips if c.get("plot")]
    if plots:
        lines += ["## Spectrograms", ""]
        for c in plots:
            lines += [f"### `{c['id']}`", "", f"![{c['id']}]({c['plot']})", ""]
    return "\n".join(lines)


def write_report(report, out_dir):
    """Writes `report.json` and `report.md` into `out_dir`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    report = dict(report)
    report["average"] = average(report["clips"])
    json_path = os.path.join(out_dir, "report.json")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2, default=_json_default, allow_nan=False)
        f.write("\n")
    md_path = os.path.join(out_dir, "report.md")
    with open(md_path, "w") as f:
        f.write(render_markdown(report))
    return json_path, md_path


def clean_floats(obj):
    """Replaces NaN/Inf by None recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_floats(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return _finite_or_none(obj)
    return obj


# --------------------------------------------------------------------------- plots


def plot_spectrograms(path, panels, sample_rate, hop_length, mel_frequencies=None,
                      title=None, dpi=72):
    """One PNG with the log-mel spectrograms of `panels`, one above the other.

    Args:
        path: output PNG path.
        panels: list of `(label, log_mel [frames, n_mels] or None)`; None panels say
            "not available". All share the time axis (seconds) and colour scale (from the
            first panel, the real audio).
        sample_rate, hop_length: for the time axis.
        mel_frequencies: centre frequency (Hz) of each mel band, to label the y axis.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("`panels` is empty.")
    ref = next((m for _, m in panels if m is not None), None)
    if ref is None:
        raise ValueError("Every panel is None.")
    ref = np.asarray(ref)
    vmax = float(np.max(ref))
    vmin = max(float(np.min(ref)), vmax - 12.0)  # 12 nats ~ 104 dB of range
    duration = max(np.asarray(m).shape[0] for _, m in panels if m is not None) \
        * hop_length / sample_rate
    n_mels = ref.shape[1]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.9 * len(panels) + 0.6),
                             sharex=True, squeeze=False, layout="constrained")
    image = None
    for ax, (label, mel) in zip(axes[:, 0], panels):
        if mel is None:
            ax.text(0.5, 0.5, f"{label}: not available", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_yticks([])
        else:
            mel = np.asarray(mel)
            seconds = mel.shape[0] * hop_length / sample_rate
            image = ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma",
                              vmin=vmin, vmax=vmax, interpolation="nearest",
                              extent=[0.0, seconds, 0, n_mels])
            if mel_frequencies is not None:
                ticks = [i for i in np.linspace(0, n_mels - 1, 5).astype(int)]
                ax.set_yticks([t + 0.5 for t in ticks])
                ax.set_yticklabels([f"{mel_frequencies[t] / 1000:.1f}" for t in ticks])
                ax.set_ylabel("kHz (mel)")
            else:
                ax.set_ylabel("mel band")
        ax.set_xlim(0.0, duration)
        ax.set_title(label, fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=11)
    if image is not None:
        cbar = fig.colorbar(image, ax=axes[:, 0].tolist(), fraction=0.025, pad=0.01)
        cbar.set_label("log magnitude (nats)")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    plt.close(fig)
    # A 256-colour palette keeps the PNGs small (a third of the size) with no visible loss.
    from PIL import Image

    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(256).save(path, optimize=True)
    return path
