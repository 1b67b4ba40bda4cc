"""`pwavenet evaluate` end to end on two short clips.

The model directories are written with the same helpers the training tasks use (config,
role file with the student's `teacher_dir`, feature statistics, checkpoint) around
freshly initialised tiny models: the evaluation reads them exactly as it reads trained
ones, without minutes of training in the default test run. The slow test trains both
for a few steps through the CLI instead.
"""

import json
import math
import os

import numpy as np
import pytest

from pwavenet_tf.audio.audio_io import read_audio, write_wav
from pwavenet_tf.audio.feature_stats import save_feature_stats
from pwavenet_tf.cli import main
from pwavenet_tf.config import load_config
from pwavenet_tf.evaluation.asr import word_error_rate
from pwavenet_tf.training.checkpointing import STATS_FILE, TrainingCheckpoint, prepare_model_dir

SR = 22050


def _write_model_dirs(root, config, stats):
    from pwavenet_tf.training.distill_task import build_student
    from pwavenet_tf.training.teacher_task import build_teacher

    teacher_dir, student_dir = os.path.join(root, "teacher"), os.path.join(root, "student")
    prepare_model_dir(teacher_dir, config, ("audio", "teacher"), "teacher")
    save_feature_stats(stats, os.path.join(teacher_dir, STATS_FILE))
    TrainingCheckpoint(teacher_dir, model=build_teacher(config, stats)).save(1)
    prepare_model_dir(student_dir, config, ("audio", "student"), "student",
                      extra={"teacher_dir": os.path.abspath(teacher_dir)})
    save_feature_stats(stats, os.path.join(student_dir, STATS_FILE))
    student = build_student(config, stats)
    rng = np.random.default_rng(0)
    for flow in student.flows:  # an untrained flow ignores its input; make it use it
        k = flow.output_proj.kernel
        k.assign(rng.normal(0.0, 0.05, k.shape).astype("float32"))
    TrainingCheckpoint(student_dir, model=student).save(1)
    return teacher_dir, student_dir


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory, data_dir):
    """Two short clips (0.5 s and 0.3 s) of ljspeech-mini in a plain folder."""
    out = tmp_path_factory.mktemp("clips")
    for name, seconds in (("LJ001-0001", 0.5), ("LJ001-0002", 0.3)):
        audio = read_audio(os.path.join(data_dir, "wavs", f"{name}.wav"), sample_rate=SR)
        start = SR // 2  # skip the leading silence
        write_wav(out / f"{name}.wav", audio[start:start + int(seconds * SR)], SR)
    return str(out)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    config = load_config("tiny")
    dim = config.audio.n_mels
    stats = {"mean": [-5.0] * dim, "std": [2.0] * dim, "count": 100}
    return _write_model_dirs(str(tmp_path_factory.mktemp("models")), config, stats)


def _check_report(out, ids, sources, teacher=True):
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    md = open(os.path.join(out, "report.md")).read()
    assert [c["id"] for c in report["clips"]] == ids
    for clip in report["clips"]:
        assert clip["id"] in md
        for src in sources:
            wav = os.path.join(out, clip["wavs"][src])
            audio = read_audio(wav)
            if src == "teacher":
                assert len(audio) == round(clip["teacher_span"]["seconds"] * SR)
            else:
                assert len(audio) == clip["samples"]
        for src in (s for s in sources if s != "teacher"):
            m = clip["whole"][src]
            assert math.isfinite(m["log_mel_l1"]) and m["log_mel_l1"] > 0
            assert math.isfinite(m["mcd_db"]) and m["mcd_db"] > 0
            assert clip["speed"][src]["samples_per_s"] > 0
        if teacher:
            assert 0 < clip["teacher_nll_bits_per_sample"] < 20
            span = clip["teacher_span"]
            for src in sources:
                assert math.isfinite(span[src]["mcd_db"])
        png = os.path.join(out, clip["plot"])
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert f"]({clip['plot']})" in md
    assert report["average"]["whole"]["griffin_lim"]["mcd_db"] > 0
    # The Griffin-Lim reference from the true mel is far closer than an untrained vocoder.
    if "student" in sources:
        avg = report["average"]["whole"]
        assert avg["griffin_lim"]["log_mel_l1"] < avg["student"]["log_mel_l1"]
    return report, md


def test_evaluate_student_with_its_teacher(model_dirs, clips_dir, tmp_path, capsys):
    teacher_dir, student_dir = model_dirs
    out = str(tmp_path / "report")
    code = main(["evaluate", "--model", student_dir, "--data", clips_dir, "--report", out,
                 "--teacher-seconds", "0.03", "--griffin-lim-iters", "4", "--quiet"])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    report, md = _check_report(out, ["LJ001-0001", "LJ001-0002"],
                               ["student", "teacher", "griffin_lim"])
    assert report["role"] == "student"
    assert report["teacher_dir"] == os.path.abspath(teacher_dir)
    assert report["settings"]["teacher_seconds"] == 0.03
    assert "first 0.03 s" in md
    if not report["settings"]["dnsmos"]:
        assert any("DNSMOS skipped" in n for n in report["notes"])
    else:
        for src in ("real", "student", "teacher", "griffin_lim"):
            assert 1 <= report["clips"][0]["dnsmos"][src]["p808_mos"] <= 5
    if not report["settings"]["asr"]:
        assert any("Word error rates skipped" in n for n in report["notes"])
    else:
        # A plain folder of clips has no transcripts: only the rate against the
        # recognizer's text of the real audio, for the whole-clip vocoders.
        assert "## Intelligibility (speech recognizer)" in md
        for clip in report["clips"]:
            asr = clip["asr"]
            assert asr["transcript"] is None and asr["real"]["wer"] is None
            assert "teacher" not in asr
            for src in ("student", "griffin_lim"):
                assert isinstance(asr[src]["text"], str)
                wer = asr[src]["wer_vs_real_asr"]
                if not asr["real"]["text"]:
                    assert wer is None
                else:  # the reported rate is the rate between the two reported texts
                    assert wer == pytest.approx(
                        word_error_rate(asr["real"]["text"], asr[src]["text"]))


def test_seeds_score_more_noise_draws_of_the_student(model_dirs, clips_dir, tmp_path, capsys):
    """`--seeds 3 --seed 5`: draws of seeds 5, 6 and 7, each scored like the student; the
    spread is over their clip averages, and a run with `--seed 6` reproduces the second."""
    _, student_dir = model_dirs
    out, single = str(tmp_path / "r3"), str(tmp_path / "r1")
    common = ["--data", clips_dir, "--model", student_dir, "--teacher-seconds", "0",
              "--griffin-lim-iters", "2", "--no-dnsmos", "--no-asr", "--no-plots"]
    assert main(["evaluate", *common, "--report", out, "--seed", "5", "--seeds", "3"]) == 0
    assert "over 3 draws" in capsys.readouterr().out
    assert main(["evaluate", *common, "--report", single, "--seed", "6", "--quiet"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    alone = json.load(open(os.path.join(single, "report.json")))
    sources = ["student", "student_seed6", "student_seed7"]
    for clip, clip6 in zip(report["clips"], alone["clips"]):
        assert set(clip["wavs"]) == set(sources) | {"griffin_lim"}
        figures = [clip["whole"][src]["mcd_db"] for src in sources]
        assert len(set(figures)) == 3  # different noise, different audio
        assert clip["whole"]["student_seed6"]["mcd_db"] == pytest.approx(
            clip6["whole"]["student"]["mcd_db"], rel=1e-6)
    spread = report["student_draws"]["mcd_db"]
    values = [report["average"]["whole"][src]["mcd_db"] for src in sources]
    assert spread["values"] == pytest.approx(values)
    assert spread["mean"] == pytest.approx(np.mean(values))
    assert spread["sd"] == pytest.approx(np.std(values, ddof=1))
    assert set(report["student_draws"]) == {"mcd_db", "log_mel_l1"}  # no DNSMOS, no ASR
    md = open(os.path.join(out, "report.md")).read()
    assert "## The student over noise draws" in md and "Student (seed 7)" in md
    assert "student_draws" not in alone and "noise draws" not in open(
        os.path.join(single, "report.md")).read()
    assert main(["evaluate", *common, "--report", out, "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_evaluate_teacher_only_max_clips(model_dirs, clips_dir, tmp_path):
    teacher_dir, _ = model_dirs
    out = str(tmp_path / "report")
    assert main(["evaluate", "--model", teacher_dir, "--data", clips_dir, "--report", out,
                 "--teacher-seconds", "0.02", "--griffin-lim-iters", "2", "--max-clips", "1",
                 "--no-dnsmos", "--no-asr", "--no-plots", "--quiet"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["role"] == "teacher" and len(report["clips"]) == 1
    assert "Word error rates skipped (--no-asr)." in report["notes"]
    assert "asr" not in report["clips"][0] and report["settings"]["asr"] is False
    clip = report["clips"][0]
    assert "plot" not in clip and "student" not in clip["wavs"]
    assert os.path.exists(os.path.join(out, clip["wavs"]["teacher"]))
    assert math.isfinite(clip["teacher_span"]["teacher"]["log_mel_l1"])
    assert "DNSMOS skipped (--no-dnsmos)." in report["notes"]


def test_evaluate_student_without_teacher_and_errors(model_dirs, clips_dir, tmp_path, capsys):
    _, student_dir = model_dirs
    # A teacher that does not exist, given explicitly: an error naming it.
    missing = str(tmp_path / "nowhere")
    assert main(["evaluate", "--model", student_dir, "--teacher", missing, "--data", clips_dir,
                 "--report", str(tmp_path / "r0"), "--quiet"]) == 2
    assert missing in capsys.readouterr().err
    # The student's recorded teacher moved away: evaluated without it, with a note.
    moved = json.load(open(os.path.join(student_dir, "pwavenet_model.json")))
    copy = tmp_path / "student_copy"
    import shutil

    shutil.copytree(student_dir, copy)
    with open(copy / "pwavenet_model.json", "w") as f:
        json.dump({**moved, "teacher_dir": missing}, f)
    out = str(tmp_path / "r1")
    assert main(["evaluate", "--model", str(copy), "--data", clips_dir, "--report", out,
                 "--max-clips", "1", "--griffin-lim-iters", "2", "--no-dnsmos", "--quiet"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["teacher_dir"] is None
    assert any("no longer exists" in n for n in report["notes"])
    assert "teacher_nll_bits_per_sample" not in report["clips"][0]
    # A relative teacher path is relative to the student directory, not the working one.
    with open(copy / "pwavenet_model.json", "w") as f:
        json.dump({**moved, "teacher_dir": os.path.relpath(
            moved["teacher_dir"], str(copy))}, f)
    from pwavenet_tf.training.distill_task import read_teacher_dir

    assert read_teacher_dir(str(copy)) == os.path.normpath(moved["teacher_dir"])
    # Bad arguments.
    assert main(["evaluate", "--model", student_dir, "--data", clips_dir, "--report", out,
                 "--max-clips", "0", "--quiet"]) == 2
    assert main(["evaluate", "--model", str(tmp_path / "absent"), "--data", clips_dir,
                 "--report", out, "--quiet"]) == 2


@pytest.mark.slow
def test_evaluate_trained_models_from_the_cli(data_dir, clips_dir, tmp_path):
    """Train both models for a few steps with the CLI, then evaluate (minutes)."""
    teacher, student = str(tmp_path / "t"), str(tmp_path / "s")
    assert main(["train-teacher", "--config", "tiny", "--data", data_dir, "--out", teacher,
                 "--steps", "3", "--quiet"]) == 0
    assert main(["distill", "--teacher", teacher, "--config", "tiny", "--data", data_dir,
                 "--out", student, "--steps", "2", "--quiet"]) == 0
    out = str(tmp_path / "report")
    assert main(["evaluate", "--model", student, "--data", clips_dir, "--report", out,
                 "--teacher-seconds", "0.03", "--griffin-lim-iters", "4", "--quiet"]) == 0
    _check_report(out, ["LJ001-0001", "LJ001-0002"], ["student", "teacher", "griffin_lim"])


def test_chunked_teacher_nll_equals_one_pass(model_dirs, clips_dir):
    from pwavenet_tf.evaluation.evaluator import teacher_nll_bits
    from pwavenet_tf.data.corpus import list_corpus
    from pwavenet_tf.data.dataset import load_utterance
    from pwavenet_tf.training.teacher_task import load_teacher

    teacher, config = load_teacher(model_dirs[0])
    utt = list_corpus(clips_dir)[0]
    audio, feats = load_utterance(utt, config.audio)
    whole = teacher_nll_bits(teacher, audio, feats, chunk_seconds=10.0, sample_rate=SR)
    # Chunks of 4 frames, each with the receptive field (9 frames) of left context.
    chunked = teacher_nll_bits(teacher, audio, feats, chunk_seconds=0.05, sample_rate=SR)
    assert 0 < whole < 20
    assert chunked == pytest.approx(whole, rel=1e-5)
