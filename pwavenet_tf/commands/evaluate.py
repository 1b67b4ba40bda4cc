"""Evaluate resynthesis against real audio: every clip of a folder is resynthesized from
its own log-mel features by the student and/or the teacher, and compared with the real
audio and with a Griffin-Lim reconstruction from the same mel (the reference floor).

Per clip and on average: teacher NLL in bits per sample on the real audio; log-mel L1
and mel-cepstral distortion (dB) of each resynthesis; DNSMOS P.808 and P.835 of real,
teacher, student and Griffin-Lim audio when the optional `eval` extra is installed
(`pip install "pwavenet_tf[eval]"`; skipped with a note otherwise); intelligibility as the
word error rate of an offline speech recognizer (PocketSphinx, also in that extra) on the
real, student and Griffin-Lim audio, against the clip's transcript (from an LJ Speech
`metadata.csv`) where there is one and against the recognizer's own text of the real audio
always; generation speed.

--model is a student directory (its teacher is found through the `teacher_dir` recorded
at distillation, or given with --teacher) or a teacher directory. The teacher generates
one sample at a time, so it resynthesizes only the first --teacher-seconds of each clip
(0: not at all; at least a clip's length: the whole clip, then scored like the student);
the student resynthesizes whole clips. Stationary lines (a DC offset, narrow tones in the
long-term spectrum that the real clips lack) are reported per vocoder, averaged over clips.

Writes to --report: report.md (tables), report.json (every figure), wavs/ (the
resynthesized clips, 16-bit) and plots/<clip>.png (log-mel spectrograms of real, teacher,
student and Griffin-Lim audio, one above the other).

Example:
  pwavenet evaluate --model runs/student --data ../shared/data/ljspeech-mini \\
      --report runs/eval --max-clips 4
"""

import os

from pwavenet_tf.commands import common


def add_arguments(p):
    p.add_argument("--model", required=True, help="trained student or teacher directory")
    p.add_argument("--teacher", help="teacher directory (default: the student's own teacher)")
    p.add_argument("--data", required=True,
                   help="folder of clips (LJ Speech layout or audio files)")
    p.add_argument("--report", required=True, help="output folder of the report")
    p.add_argument("--max-clips", type=int, default=None, help="evaluate only the first N clips")
    p.add_argument("--teacher-seconds", type=float, default=1.0,
                   help="teacher resynthesis of the first N seconds of each clip (default 1.0; "
                        "0 skips it; a clip's length or more: the whole clip, scored like "
                        "the student)")
    p.add_argument("--griffin-lim-iters", type=int, default=32,
                   help="Griffin-Lim iterations of the reference (default 32)")
    p.add_argument("--mcd-coefficients", type=common.positive_int, default=24,
                   help="mel-cepstral coefficients c1..cD in the MCD (default 24)")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS even if installed")
    p.add_argument("--no-asr", action="store_true",
                   help="skip the speech-recognizer word error rates even if installed")
    p.add_argument("--xla", action="store_true", help="generate with XLA-compiled loops")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--seeds", type=common.positive_int, default=1,
                   help="student noise draws per clip, seeds --seed .. --seed + N - 1 "
                        "(default 1); with N > 1 the report gives each figure's mean and "
                        "standard deviation over the draws")
    p.add_argument("--chunk-seconds", type=float, default=10.0,
                   help="student: generate in chunks of this length (default 10)")
    p.add_argument("--no-plots", action="store_true", help="skip the spectrogram PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args):
    from pwavenet_tf.evaluation.evaluator import evaluate_model

    report = evaluate_model(
        args.model, args.data, args.report, teacher_dir=args.teacher,
        max_clips=args.max_clips, teacher_seconds=args.teacher_seconds,
        griffin_lim_iters=args.griffin_lim_iters, mcd_coefficients=args.mcd_coefficients,
        dnsmos=not args.no_dnsmos, asr=not args.no_asr, xla=args.xla, seed=args.seed,
        chunk_seconds=args.chunk_seconds, plots=not args.no_plots, seeds=args.seeds,
        log=(lambda *a: None) if args.quiet else print,
    )
    avg = report["average"]
    parts = []
    nll = avg.get("teacher_nll_bits_per_sample")
    if nll is not None:
        parts.append(f"teacher NLL {nll:.3f} bits/sample")
    for src in ("student", "teacher", "griffin_lim"):
        for scope in ("whole", "teacher_span"):
            m = avg.get(scope, {}).get(src)
            if m and m.get("mcd_db") is not None:
                parts.append(f"{src} ({scope.replace('_', ' ')}) log-mel L1 "
                             f"{m['log_mel_l1']:.3f}, MCD {m['mcd_db']:.2f} dB")
                break
    for src in ("real", "student", "griffin_lim"):
        wer = avg.get("asr", {}).get(src, {})
        value = wer.get("wer_vs_real_asr", wer.get("wer"))
        if value is not None:
            key = "vs real ASR" if "wer_vs_real_asr" in wer else "vs transcript"
            parts.append(f"{src} WER {value:.2f} ({key})")
    for figure, spread in report.get("student_draws", {}).items():
        parts.append(f"student {figure} over {len(spread['values'])} draws "
                     f"{spread['mean']:.3f} +- {spread['sd']:.3f}")
    print(f"wrote {os.path.join(args.report, 'report.md')} ({len(report['clips'])} clips): "
          + "; ".join(parts))
