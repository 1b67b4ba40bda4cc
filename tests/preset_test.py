"""The bundled preset: loads in one call, and its student sounds like speech, not hiss."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pwavenet_tf import presets
from pwavenet_tf.audio.audio_io import read_audio
from pwavenet_tf.evaluation import asr
from pwavenet_tf.evaluation.metrics import log_mel_l1
from pwavenet_tf.inference import features_from_audio
from pwavenet_tf.models.iaf_student import IAFStudent
from pwavenet_tf.models.student_generator import StudentGenerator
from pwavenet_tf.models.wavenet_teacher import WaveNetTeacher


@pytest.fixture(scope="module")
def preset():
    return presets.from_preset("ljspeech_mini")


def test_preset_loads_with_one_call(preset):
    assert "ljspeech_mini" in presets.list_presets()
    student, teacher = preset.student(), preset.teacher()
    assert isinstance(student, IAFStudent) and isinstance(teacher, WaveNetTeacher)
    meta = preset.metadata
    for key in ("name", "description", "data", "held_out", "teacher_training",
                "student_training"):
        assert key in meta, key
    assert meta["teacher_training"]["step"] > 0 and meta["student_training"]["step"] > 0
    assert set(os.path.basename(c)[:10] for c in presets.bundled_clips()) <= set(meta["held_out"])


def _rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype="float64"))))


@pytest.mark.parametrize("clip", presets.bundled_clips(), ids=os.path.basename)
def test_student_resynthesis_is_speech_not_hiss_or_whisper(preset, clip):
    cfg = preset.config.audio
    real = read_audio(clip, sample_rate=cfg.sample_rate)
    feats = features_from_audio(real, cfg)
    real = real[: len(feats) * cfg.hop_length]
    audio = np.asarray(StudentGenerator(preset.student()).generate(feats[None], seed=(0, 0)))[0]
    noise = np.random.default_rng(0).normal(size=real.shape).astype("float32")
    noise *= np.sqrt(np.mean(real ** 2) / np.mean(noise ** 2))  # the same loudness
    student_l1 = log_mel_l1(real, audio, cfg)
    noise_l1 = log_mel_l1(real, noise, cfg)
    print(f"{os.path.basename(clip)}: log-mel L1 student {student_l1:.3f} vs noise "
          f"{noise_l1:.3f}; RMS real {_rms_db(real):.1f} dB, student {_rms_db(audio):.1f} dB")
    assert student_l1 < 0.75 * noise_l1
    assert abs(_rms_db(audio) - _rms_db(real)) <= 3.0


def test_demo_runs_out_of_the_box(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "pwavenet_tf.cli", "demo", "--out", str(out),
                           "--teacher-seconds", "0.05"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "student RTF" in proc.stdout and "speed-up" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert len(report["clips"]) == len(presets.bundled_clips())
    for clip in report["clips"]:
        assert (out / clip["png"]).stat().st_size > 10_000
        assert (out / f"{clip['clip']}_student.wav").exists()
        assert clip["student_rtf"] > 0 and clip["teacher_rtf"] > clip["student_rtf"]
    md = (out / "report.md").read_text()
    assert md.startswith("# pwavenet demo")
    if asr.unavailable_reason() is None:  # the test extra installs the recognizer
        assert "What a speech recognizer hears" in md and "recognizer hears" in proc.stdout
        for clip in report["clips"]:
            assert clip["asr"]["real"]["text"]  # real speech is recognized as words
            assert clip["asr"]["student"]["wer_vs_real_asr"] >= 0
