"""The evaluation engine behind `pwavenet evaluate`: resynthesis against real audio.

Every clip of a folder is resynthesized from its own log-mel features by the student
and/or the teacher, and compared with the real audio and with a Griffin-Lim
reconstruction from the same mel (the reference floor). Per clip: teacher NLL in bits per
sample on the real audio (`teacher_nll_bits`); log-mel L1 and mel-cepstral distortion of
each resynthesis (`metrics.compare`), over whole clips and over the teacher's span;
optional DNSMOS scores (`dnsmos`) and speech-recognizer word error rates (`asr`);
generation speed. `model_dir` is a student directory (its teacher is found through the
`teacher_dir` recorded at distillation, or given as `teacher_dir`) or a teacher directory;
the teacher resynthesizes only the first `teacher_seconds` of each clip.

Writes to `out_dir`: report.md, report.json (`report.write_report`), wavs/ (the
resynthesized clips, 16-bit) and plots/<clip>.png (log-mel spectrograms).
"""

import math
import os
import time

import numpy as np
import tensorflow as tf

from pwavenet_tf.audio.audio_io import write_wav
from pwavenet_tf.audio.front_end import make_log_mel
from pwavenet_tf.benchmarks.speed import machine_info
from pwavenet_tf.data.corpus import list_corpus
from pwavenet_tf.data.dataset import load_utterance
from pwavenet_tf.data.transcripts import read_transcripts
from pwavenet_tf.evaluation import asr as A
from pwavenet_tf.evaluation import metrics as M
from pwavenet_tf.evaluation import report as R
from pwavenet_tf.evaluation.dnsmos import DNSMOS, unavailable_reason
from pwavenet_tf.evaluation.stationary_lines import stationary_lines
from pwavenet_tf.inference import load_model
from pwavenet_tf.models.student_generator import StudentGenerator
from pwavenet_tf.models.teacher_generator import TeacherGenerator
from pwavenet_tf.training.distill_task import read_teacher_dir
from pwavenet_tf.training.teacher_task import load_teacher

LINE_FFT_SIZE = 4096  # LTAS resolution of the stationary-line figures (5.4 Hz at 22,050 Hz)

__all__ = ["evaluate_model", "teacher_nll_bits"]


# --------------------------------------------------------------------------- pieces


def _load_models(model_dir, teacher_dir, notes, log):
    role, model, config = load_model(model_dir)
    teacher = student = None
    if role == "teacher":
        teacher = model
        if teacher_dir:
            notes.append(f"--teacher {teacher_dir} ignored: --model is itself a teacher.")
        teacher_dir = model_dir
    else:
        student = model
        recorded = read_teacher_dir(model_dir)
        teacher_dir = teacher_dir or recorded
        if not teacher_dir:
            notes.append("No teacher: the student directory records none and --teacher was "
                         "not given, so there is no teacher NLL or teacher resynthesis.")
        elif not os.path.isdir(teacher_dir):
            if recorded and teacher_dir == recorded:
                notes.append(f"The student's teacher {teacher_dir} no longer exists (give "
                             "--teacher); no teacher NLL or teacher resynthesis.")
                teacher_dir = None
            else:
                raise FileNotFoundError(f"Teacher directory not found: {teacher_dir}")
        if teacher_dir:
            teacher, tconfig = load_teacher(teacher_dir)
            if tconfig.audio.to_dict() != config.audio.to_dict():
                raise ValueError(
                    f"The teacher in {teacher_dir} uses other audio/feature settings than "
                    f"the student in {model_dir}; they cannot be evaluated on the same "
                    "features."
                )
    log(f"evaluating {role} {model_dir}" + (f" with teacher {teacher_dir}" if teacher else ""))
    return role, config, teacher, student, teacher_dir


def teacher_nll_bits(teacher, audio, features, speaker_id=None, chunk_seconds=2.0,
                     sample_rate=22050, forward=None):
    """Mean NLL in bits per sample of real `audio` `[T]` under the teacher (teacher forcing).

    Long clips are processed in chunks with enough context on both sides (the receptive
    field on the left, the upsampler's look-ahead on the right) that every kept position
    sees exactly what it sees in one pass over the whole clip.
    """
    hop = teacher.hop_length
    frames = features.shape[0]
    audio = np.asarray(audio[: frames * hop], "float32")
    half = teacher.upsampler.pre_kernel_size // 2
    left = math.ceil(teacher.receptive_field / hop) + half
    chunk = max(1, int(chunk_seconds * sample_rate / hop))
    loss = teacher.make_loss()
    if forward is None:
        forward = tf.function(lambda inputs: teacher(inputs), reduce_retracing=True)
    total = 0.0
    for f0 in range(0, frames, chunk):
        f1 = min(frames, f0 + chunk)
        fa, fb = max(0, f0 - left), min(frames, f1 + half)
        inputs = {"audio": tf.constant(audio[None, fa * hop: fb * hop]),
                  "features": tf.constant(features[None, fa:fb])}
        if teacher.multi_speaker:
            inputs["speaker_id"] = tf.constant([int(speaker_id or 0)], tf.int32)
        params = forward(inputs)
        nll = loss.call(inputs["audio"], params).numpy()[0]
        total += float(np.sum(nll[(f0 - fa) * hop: (f1 - fa) * hop]))
    return total / (frames * hop) / math.log(2.0)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _speed(samples, seconds, sample_rate):
    return {"samples_per_s": samples / seconds, "seconds": seconds,
            "real_time_factor": seconds / (samples / sample_rate)}


# --------------------------------------------------------------------------- evaluate


def evaluate_model(model_dir, data_dir, out_dir, teacher_dir=None, max_clips=None,
                   teacher_seconds=1.0, griffin_lim_iters=32, mcd_coefficients=24,
                   dnsmos=True, asr=True, xla=False, seed=0, chunk_seconds=10.0, plots=True,
                   seeds=1, log=print):
    """Runs the evaluation, writes the report to `out_dir`; returns the report dict.

    The dict is `report.json` (see the module doc) plus `"average"`, the means over clips
    of every per-clip figure (`report.average`). `log` receives the progress lines.

    `seeds` > 1 also scores the student's draws with the noise seeds `seed + 1` ..
    `seed + seeds - 1` (sources `student_seed<N>`, each scored like `student`, which is the
    draw of `seed`), and `report["student_draws"]` gives each figure's clip average per draw
    with their mean and standard deviation (`report.draw_spread`): what one noise draw
    moves a 4-clip figure by, the yardstick for comparing two students.
    """
    if max_clips is not None and max_clips < 1:
        raise ValueError(f"--max-clips must be >= 1. Received: {max_clips}")
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1. Received: {seeds}")
    if teacher_seconds is None or teacher_seconds < 0:
        raise ValueError(f"--teacher-seconds must be >= 0. Received: {teacher_seconds}")
    if griffin_lim_iters < 0:
        raise ValueError(f"--griffin-lim-iters must be >= 0. Received: {griffin_lim_iters}")
    if chunk_seconds <= 0:
        raise ValueError(f"--chunk-seconds must be > 0. Received: {chunk_seconds}")

    notes = []
    role, config, teacher, student, teacher_dir = _load_models(model_dir, teacher_dir, notes,
                                                               log)
    audio_cfg = config.audio
    if not audio_cfg.uses_mel:
        raise ValueError("evaluate resynthesizes from log-mel features; this model is "
                         f"conditioned on external features (feature_dim={audio_cfg.feature_dim}).")
    sr, hop = audio_cfg.sample_rate, audio_cfg.hop_length
    utts = list_corpus(data_dir)
    if max_clips:
        utts = utts[:max_clips]
    mel_layer = make_log_mel(audio_cfg)

    scorer = None
    if dnsmos:
        reason = unavailable_reason()
        if reason:
            notes.append(f"DNSMOS skipped: {reason}.")
        else:
            scorer = DNSMOS.create()
    else:
        notes.append("DNSMOS skipped (--no-dnsmos).")
    recognizer = None
    if asr:
        reason = A.unavailable_reason()
        if reason:
            notes.append(f"Word error rates skipped: {reason}.")
        else:
            recognizer = A.SpeechRecognizer.create()
            if teacher is not None and teacher_seconds > 0:
                notes.append("The speech recognizer scores whole clips only: the teacher's "
                             "audio where its span (--teacher-seconds) covers the clip.")
    else:
        notes.append("Word error rates skipped (--no-asr).")
    transcripts = read_transcripts(data_dir) if recognizer is not None else {}

    os.makedirs(os.path.join(out_dir, "wavs"), exist_ok=True)
    teacher_frames = int(round(teacher_seconds * sr / hop)) if teacher is not None else 0
    if teacher is not None and teacher_seconds > 0 and teacher_frames < 1:
        teacher_frames = 1
    if teacher is not None and teacher_frames == 0:
        notes.append("Teacher resynthesis skipped (--teacher-seconds 0).")

    student_gen = teacher_gen = None
    chunk_frames = max(1, int(chunk_seconds * sr / hop))
    dim = audio_cfg.conditioning_dim

    def speakers(utt, model):
        return np.array([utt.speaker_id], "int32") if model.multi_speaker else None

    # Warm-ups (tracing / compilation) with two lengths, so that the relaxed-shape trace
    # serves every clip and no clip's time includes tracing.
    warm = [np.full((1, n, dim), -5.0, "float32") for n in (1, 2)]
    spk0 = np.zeros([1], "int32")
    if student is not None:
        student_gen = StudentGenerator(student)
        for w in warm:
            student_gen.generate(w, spk0 if student.multi_speaker else None,
                                 jit_compile=xla).numpy()
    if teacher is not None and teacher_frames:
        teacher_gen = TeacherGenerator(teacher, jit_compile=xla)
        for w in warm:
            teacher_gen.generate(w, spk0 if teacher.multi_speaker else None).numpy()
    teacher_forward = None
    if teacher is not None:
        teacher_forward = tf.function(lambda inputs: teacher(inputs), reduce_retracing=True)

    clips = []
    line_pairs = {}  # source -> [(resynthesis, real)] of the clips long enough for the LTAS
    for i, utt in enumerate(utts):
        audio, feats = load_utterance(utt, audio_cfg, mel_layer=mel_layer)
        frames = feats.shape[0]
        if frames < 1:
            notes.append(f"Clip {utt.id} skipped: shorter than one frame.")
            continue
        name = R.safe_name(utt.id)
        clip = {"id": utt.id, "seconds": len(audio) / sr, "samples": int(len(audio))}
        log(f"[{i + 1}/{len(utts)}] {utt.id}: {clip['seconds']:.2f} s")
        wavs = {}

        if teacher is not None:
            clip["teacher_nll_bits_per_sample"] = teacher_nll_bits(
                teacher, audio, feats, utt.speaker_id, sample_rate=sr, forward=teacher_forward)

        resynth = {}
        if student_gen is not None:
            out, secs = _timed(lambda: student_gen.generate(
                feats[None], speakers(utt, student), seed=(seed, i), chunk_frames=chunk_frames,
                jit_compile=xla).numpy()[0])
            resynth["student"] = out
            clip.setdefault("speed", {})["student"] = _speed(len(out), secs, sr)
            for draw in range(seed + 1, seed + seeds):
                resynth[f"student_seed{draw}"] = student_gen.generate(
                    feats[None], speakers(utt, student), seed=(draw, i),
                    chunk_frames=chunk_frames, jit_compile=xla).numpy()[0]
        if teacher_gen is not None:
            tf_frames = min(frames, teacher_frames)
            out, secs = _timed(lambda: teacher_gen.generate(
                feats[None, :tf_frames], speakers(utt, teacher), seed=(seed, i)).numpy()[0])
            resynth["teacher"] = out
            clip.setdefault("speed", {})["teacher"] = _speed(len(out), secs, sr)
        out, secs = _timed(lambda: M.griffin_lim_from_mel(feats, mel_layer,
                                                          num_iters=griffin_lim_iters, seed=seed))
        resynth["griffin_lim"] = out
        clip.setdefault("speed", {})["griffin_lim"] = _speed(len(out), secs, sr)

        for src, out in resynth.items():
            if not np.all(np.isfinite(out)):
                raise RuntimeError(f"The {src} produced NaN/Inf audio for clip {utt.id}.")
            wavs[src] = os.path.join("wavs", f"{name}_{src}.wav")
            write_wav(os.path.join(out_dir, wavs[src]), out, sr)
        clip["wavs"] = wavs
        for src, out in resynth.items():
            if len(out) >= LINE_FFT_SIZE:
                line_pairs.setdefault(src, []).append((out, audio[:len(out)]))

        # Whole-clip metrics; the teacher's only when its span is the whole clip
        # (`--teacher-seconds` at least the clip's length).
        whole = {src: out for src, out in resynth.items() if len(out) == len(audio)}
        clip["whole"] = {src: M.compare(audio, out, mel_layer, mcd_coefficients)
                         for src, out in whole.items()}
        if "teacher" in resynth:
            n = len(resynth["teacher"])
            clip["teacher_span"] = {"seconds": n / sr}
            for src, out in resynth.items():
                clip["teacher_span"][src] = M.compare(audio[:n], out[:n], mel_layer,
                                                      mcd_coefficients)

        if scorer is not None:
            scores = {"real": scorer.score(audio, sr)}
            for src, out in resynth.items():
                scores[src] = scorer.score(out, sr)
            clip["dnsmos"] = scores

        if recognizer is not None:
            clip["asr"] = A.score_clip(recognizer, audio, whole, sr, transcripts.get(utt.id))

        if plots:
            real_mel = M.log_mel(audio, mel_layer)
            panels = [("Real", real_mel)]
            if teacher is not None:
                t = resynth.get("teacher")
                label = "Teacher" + (f" (first {len(t) / sr:.2f} s)" if t is not None else "")
                panels.append((label, None if t is None else M.log_mel(t, mel_layer)))
            if student is not None:
                panels.append(("Student", M.log_mel(resynth["student"], mel_layer)))
            panels.append((f"Griffin-Lim ({griffin_lim_iters} iterations, reference)",
                           M.log_mel(resynth["griffin_lim"], mel_layer)))
            clip["plot"] = os.path.join("plots", f"{name}.png")
            R.plot_spectrograms(os.path.join(out_dir, clip["plot"]), panels, sr, hop,
                                mel_frequencies=mel_layer.mel_center_frequencies,
                                title=f"{utt.id}: log-mel spectrograms")
        clips.append(R.clean_floats(clip))

    if not clips:
        raise ValueError(f"No clip of {data_dir} could be evaluated.")
    info = machine_info()
    report = {
        "model_dir": os.path.abspath(model_dir),
        "model_name": os.path.basename(os.path.normpath(model_dir)),
        "role": role,
        "teacher_dir": os.path.abspath(teacher_dir) if teacher is not None else None,
        "config": config.name,
        "data_dir": os.path.abspath(data_dir),
        "sample_rate": sr,
        "machine": f"{info['cpu']}, {info['cores']} cores",
        "settings": {"teacher_seconds": teacher_seconds if teacher is not None else None,
                     "max_clips": max_clips, "griffin_lim_iters": griffin_lim_iters,
                     "mcd_coefficients": mcd_coefficients, "seed": seed, "seeds": seeds,
                     "xla": xla,
                     "dnsmos": scorer is not None, "asr": recognizer is not None},
        "notes": notes,
        "clips": clips,
        # Averaged over clips (a single clip's narrow excess is noisy): see stationary_lines.
        "stationary_lines": {
            src: stationary_lines(pairs, sr, fft_size=LINE_FFT_SIZE,
                                  max_hz=min(audio_cfg.fmax or sr / 2, sr / 2))
            for src, pairs in line_pairs.items()},
    }
    if student is not None and seeds > 1:
        draws = ["student"] + [f"student_seed{d}" for d in range(seed + 1, seed + seeds)]
        report["student_draws"] = R.draw_spread(R.average(clips), draws)
    R.write_report(report, out_dir)
    report["average"] = R.average(clips)
    return report
