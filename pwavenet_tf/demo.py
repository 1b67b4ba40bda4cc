"""`pwavenet demo`: hear the bundled models, or watch every stage run at tiny size.

- `run_demo(out_dir)`: vocodes the bundled clips with the bundled student (whole clips)
  and the bundled teacher (a short excerpt: it is autoregressive), writes the WAVs, a
  spectrogram comparison PNG per clip, `report.md` / `report.json`, and returns the
  figures (real-time factors, log-mel L1, MCD, loudness, and, when the offline speech
  recognizer of the `eval` extra is installed, what it hears in the real and the student
  audio with the word error rate between the two).
- `run_training_demo(out_dir, data_dir)`: trains a tiny teacher, distills a tiny student,
  exports it as a SavedModel, loads the export the way a server would and vocodes a clip
  through it.
"""

import json
import os
import shutil
import time

import numpy as np

from pwavenet_tf import presets
from pwavenet_tf.audio.audio_io import read_audio, write_wav
from pwavenet_tf.audio.front_end import make_log_mel
from pwavenet_tf.evaluation import asr
from pwavenet_tf.evaluation.metrics import compare
from pwavenet_tf.evaluation.report import plot_spectrograms
from pwavenet_tf.inference import features_from_audio, real_time_factor
from pwavenet_tf.models.student_generator import StudentGenerator
from pwavenet_tf.models.teacher_generator import TeacherGenerator


def rms_db(audio):
    audio = np.asarray(audio, dtype="float64")
    return float(20 * np.log10(np.sqrt(np.mean(audio ** 2)) + 1e-12))


def _timed(fn):
    start = time.perf_counter()
    out = np.asarray(fn())
    return out, time.perf_counter() - start


def run_demo(out_dir, preset=presets.DEFAULT_PRESET, teacher_seconds=0.25, seed=0, log=print):
    """Vocodes the bundled clips with the preset's student and teacher (see module doc)."""
    p = presets.from_preset(preset)
    cfg = p.config.audio
    student = p.student()
    teacher = p.teacher() if p.has("teacher") else None
    mel_layer = make_log_mel(cfg)
    student_gen = StudentGenerator(student)
    teacher_gen = TeacherGenerator(teacher) if teacher is not None else None
    recognizer = asr.SpeechRecognizer.create()
    if recognizer is None:
        log(f"(no speech recognizer: {asr.unavailable_reason()}; word error rates skipped)")
    os.makedirs(out_dir, exist_ok=True)
    # Warm up both generators (graph tracing is not generation time): two lengths, so
    # that `reduce_retracing` settles on a length-agnostic graph before timing.
    for frames in (3, 4):
        zeros = np.zeros((1, frames, cfg.conditioning_dim), "float32")
        student_gen.generate(zeros)
        if teacher_gen is not None:
            teacher_gen.generate(zeros[:, : frames - 2])

    clips = []
    for path in presets.bundled_clips():
        stem = os.path.splitext(os.path.basename(path))[0]
        real = read_audio(path, sample_rate=cfg.sample_rate)
        feats = features_from_audio(real, cfg, mel_layer)
        real = real[: len(feats) * cfg.hop_length]
        student_audio, s_time = _timed(
            lambda: student_gen.generate(feats[None], seed=(seed, 0))[0])
        write_wav(os.path.join(out_dir, f"{stem}_real.wav"), real, cfg.sample_rate)
        write_wav(os.path.join(out_dir, f"{stem}_student.wav"), student_audio, cfg.sample_rate)
        clip = {
            "clip": stem,
            "seconds": len(real) / cfg.sample_rate,
            "student_rtf": real_time_factor(len(student_audio), cfg.sample_rate, s_time),
            "student_samples_per_second": len(student_audio) / s_time,
            "student": compare(real, student_audio, cfg),
            "real_rms_db": rms_db(real),
            "student_rms_db": rms_db(student_audio),
        }
        teacher_mel = None
        if teacher_gen is not None and teacher_seconds > 0:
            frames = max(1, int(teacher_seconds * cfg.sample_rate / cfg.hop_length))
            t_audio, t_time = _timed(
                lambda: teacher_gen.generate(feats[None, :frames], seed=(seed, 0))[0])
            write_wav(os.path.join(out_dir, f"{stem}_teacher_excerpt.wav"), t_audio,
                      cfg.sample_rate)
            clip["teacher_excerpt_seconds"] = len(t_audio) / cfg.sample_rate
            clip["teacher_rtf"] = real_time_factor(len(t_audio), cfg.sample_rate, t_time)
            clip["teacher_samples_per_second"] = len(t_audio) / t_time
            clip["speedup"] = clip["student_samples_per_second"] / clip["teacher_samples_per_second"]
            teacher_mel = np.asarray(mel_layer(t_audio[None]))[0]
        png = os.path.join(out_dir, f"{stem}_spectrograms.png")
        plot_spectrograms(png, [
            ("real", feats),
            (f"teacher (first {teacher_seconds:g} s)" if teacher_mel is not None else "teacher",
             teacher_mel),
            ("student", np.asarray(mel_layer(student_audio[None]))[0]),
        ], cfg.sample_rate, cfg.hop_length, title=f"{stem}: log-mel of real / teacher / student")
        clip["png"] = os.path.basename(png)
        if recognizer is not None:
            clip["asr"] = asr.score_clip(recognizer, real, {"student": student_audio},
                                         cfg.sample_rate)
        clips.append(clip)
        line = (f"{stem}: {clip['seconds']:.2f} s, student RTF {clip['student_rtf']:.3f} "
                f"({clip['student_samples_per_second']:,.0f} samples/s)")
        if "teacher_rtf" in clip:
            line += (f", teacher RTF {clip['teacher_rtf']:.1f} "
                     f"({clip['teacher_samples_per_second']:,.0f} samples/s), "
                     f"speed-up x{clip['speedup']:.0f}")
        log(line)
        if "asr" in clip:
            log(f"  recognizer hears in the real clip: \"{clip['asr']['real']['text']}\"\n"
                f"  and in the student's:             \"{clip['asr']['student']['text']}\" "
                f"(word error rate {_fmt_wer(clip['asr']['student']['wer_vs_real_asr'])})")

    report = {"preset": p.name, "out_dir": os.path.abspath(out_dir), "clips": clips,
              "metadata": {k: v for k, v in p.metadata.items() if not k.endswith("_training")}}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2, default=float)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(_markdown(report))
    log(f"wrote WAVs, spectrogram PNGs and report.md to {out_dir}")
    return report


def _markdown(report):
    lines = [f"# pwavenet demo ({report['preset']} preset)", "",
             "| clip | seconds | student RTF | teacher RTF (excerpt) | speed-up | "
             "student log-mel L1 | student MCD (dB) | real / student RMS (dB) |",
             "|---|---|---|---|---|---|---|---|"]
    for c in report["clips"]:
        lines.append(
            f"| {c['clip']} | {c['seconds']:.2f} | {c['student_rtf']:.3f} | "
            f"{c.get('teacher_rtf', float('nan')):.1f} | x{c.get('speedup', float('nan')):.0f} | "
            f"{c['student']['log_mel_l1']:.3f} | {c['student']['mcd_db']:.2f} | "
            f"{c['real_rms_db']:.1f} / {c['student_rms_db']:.1f} |")
    lines += ["", "RTF: seconds of compute per second of audio (below 1 is faster than real "
              "time). The teacher generates a short excerpt only: it is autoregressive.", ""]
    heard = [c for c in report["clips"] if "asr" in c]
    if heard:
        lines += ["## What a speech recognizer hears", "",
                  "PocketSphinx (offline, default US-English model) on the real clip and on "
                  "the student's resynthesis; the word error rate of the student's text "
                  "against the real clip's text (0 is the same words).", "",
                  "| clip | real | student | word error rate |", "|---|---|---|---|"]
        for c in heard:
            a = c["asr"]
            lines.append(f"| {c['clip']} | {a['real']['text'] or '–'} | "
                         f"{a['student']['text'] or '–'} | "
                         f"{_fmt_wer(a['student']['wer_vs_real_asr'])} |")
        lines.append("")
    return "\n".join(lines)


def _fmt_wer(wer):
    return "–" if wer is None else f"{wer:.2f}"


def run_training_demo(out_dir, data_dir=None, teacher_steps=300, student_steps=100,
                      seed=0, verbose=2, log=print):
    """Every stage at tiny size from scratch: train, distill, export, load, vocode."""
    import tensorflow as tf

    from pwavenet_tf.config import load_config
    from pwavenet_tf.export.export_module import save_export
    from pwavenet_tf.training.distill_task import DistillTask
    from pwavenet_tf.training.teacher_task import TeacherTask

    os.makedirs(out_dir, exist_ok=True)
    if data_dir is None:
        data_dir = os.path.join(out_dir, "data")
        os.makedirs(data_dir, exist_ok=True)
        for clip in presets.bundled_clips():
            shutil.copy(clip, data_dir)
    config = load_config("tiny")
    config = config.override(teacher_training={"num_validation": 1},
                             distill={"num_validation": 1})
    timings = {}
    start = time.perf_counter()
    log(f"[1/5] training a tiny teacher for {teacher_steps} steps on {data_dir}")
    t_metrics = TeacherTask(config, data_dir, os.path.join(out_dir, "teacher"), seed=seed,
                            verbose=verbose, log=log).run(steps=teacher_steps)
    timings["train_teacher_s"] = time.perf_counter() - start
    log(f"      teacher: {t_metrics.get('train_bits_per_sample', float('nan')):.2f} bits/sample")

    start = time.perf_counter()
    log(f"[2/5] distilling a tiny student for {student_steps} steps")
    s_metrics = DistillTask(config, os.path.join(out_dir, "teacher"), data_dir,
                            os.path.join(out_dir, "student"), seed=seed, verbose=verbose,
                            log=log).run(steps=student_steps)
    timings["distill_s"] = time.perf_counter() - start
    log(f"      KL per sample {s_metrics['initial_kl_per_sample']:.3f} -> "
        f"{s_metrics['kl_per_sample']:.3f} nats")

    start = time.perf_counter()
    log("[3/5] exporting the student as a SavedModel (TF Serving layout)")
    from pwavenet_tf.training.distill_task import load_student

    student, student_config = load_student(os.path.join(out_dir, "student"))
    export_dir, _ = save_export(student, student_config, os.path.join(out_dir, "export"),
                                name="pwavenet")
    timings["export_s"] = time.perf_counter() - start

    log(f"[4/5] loading {export_dir} with tf.saved_model.load (no project code needed)")
    loaded = tf.saved_model.load(str(export_dir))
    clip = presets.bundled_clips()[0]
    audio = read_audio(clip, sample_rate=student_config.audio.sample_rate)
    log(f"[5/5] vocoding {os.path.basename(clip)} through the export")
    start = time.perf_counter()
    out = loaded.signatures["vocode_waveform"](audio=tf.constant(audio[None]),
                                               seed=tf.constant(seed, tf.int64))
    timings["vocode_s"] = time.perf_counter() - start
    vocoded = out["audio"].numpy()[0]
    wav = os.path.join(out_dir, "vocoded.wav")
    write_wav(wav, vocoded, student_config.audio.sample_rate)
    log(f"wrote {wav} ({len(vocoded) / student_config.audio.sample_rate:.2f} s); "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return {"teacher": t_metrics, "student": s_metrics, "export_dir": str(export_dir),
            "timings": timings, "vocoded": wav}
