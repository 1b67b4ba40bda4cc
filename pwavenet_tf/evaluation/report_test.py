import json
import math

import numpy as np
import pytest

from pwavenet_tf.evaluation import report as R


def _clip(i, nll):
    return {
        "id": f"spk/clip{i}",
        "seconds": 1.0 + i,
        "teacher_nll_bits_per_sample": nll,
        "whole": {"student": {"log_mel_l1": 1.0 + i, "mcd_db": 5.0},
                  "griffin_lim": {"log_mel_l1": 0.1, "mcd_db": 0.5}},
        "teacher_span": {"seconds": 0.5, "teacher": {"log_mel_l1": 2.0, "mcd_db": 6.0},
                         "student": {"log_mel_l1": 1.5, "mcd_db": 5.5},
                         "griffin_lim": {"log_mel_l1": 0.2, "mcd_db": 0.7}},
        "speed": {"student": {"samples_per_s": 1e5 * (i + 1), "real_time_factor": 0.2}},
        "dnsmos": {"real": {"p808_mos": 4.0, "p835_sig": 3.5, "p835_bak": 4.0,
                            "p835_ovrl": 3.3}},
        "plot": f"plots/{R.safe_name(f'spk/clip{i}')}.png",
    }


def _report(clips):
    return {"model_dir": "/m/student", "model_name": "student", "role": "student",
            "teacher_dir": "/m/teacher", "config": "tiny", "data_dir": "/d",
            "sample_rate": 22050, "machine": "test cpu",
            "settings": {"teacher_seconds": 0.5, "max_clips": None, "griffin_lim_iters": 8,
                         "mcd_coefficients": 24, "seed": 0, "xla": False, "dnsmos": True},
            "notes": ["a note"], "clips": clips}


def test_average_skips_missing_values():
    avg = R.average([_clip(0, 12.0), _clip(1, None)])
    assert avg["teacher_nll_bits_per_sample"] == 12.0
    assert avg["whole"]["student"]["log_mel_l1"] == pytest.approx(1.5)
    assert avg["speed"]["student"]["samples_per_s"] == pytest.approx(1.5e5)
    assert avg["dnsmos"]["real"]["p808_mos"] == 4.0


def test_write_report_files_parse(tmp_path):
    json_path, md_path = R.write_report(_report([_clip(0, 12.0), _clip(1, 11.0)]), tmp_path)
    data = json.loads(open(json_path).read())
    assert len(data["clips"]) == 2
    assert data["average"]["teacher_nll_bits_per_sample"] == pytest.approx(11.5)
    md = open(md_path).read()
    for text in ("## Whole clips", "## First 0.5 s (teacher span)", "## DNSMOS", "**mean**",
                 "`spk/clip1`", "a note", "![spk/clip0](plots/spk__clip0.png)", "11.500"):
        assert text in md, text
    # Every table row has as many cells as its header.
    for block in md.split("\n\n"):
        rows = [r for r in block.splitlines() if r.startswith("|")]
        if rows:
            assert len({r.count("|") for r in rows}) == 1, block


def test_clean_floats_and_json_has_no_nan(tmp_path):
    clip = R.clean_floats(_clip(0, float("nan")))
    assert clip["teacher_nll_bits_per_sample"] is None
    R.write_report(_report([clip]), tmp_path)
    text = (tmp_path / "report.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["average"].get("teacher_nll_bits_per_sample") is None


def test_safe_name():
    assert R.safe_name("LJ001-0001") == "LJ001-0001"
    assert R.safe_name("spk a/clip:1") == "spk_a__clip_1"


def test_plot_spectrograms(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(0)
    real = rng.normal(-4, 2, (80, 20)).astype("float32")
    path = R.plot_spectrograms(
        tmp_path / "p" / "clip.png",
        [("Real", real), ("Teacher (first 0.1 s)", real[:10]), ("Student", None)],
        sample_rate=22050, hop_length=256, mel_frequencies=np.linspace(50, 8000, 20),
        title="clip")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400
    with pytest.raises(ValueError, match="None"):
        R.plot_spectrograms(tmp_path / "x.png", [("a", None)], 22050, 256)


def test_fmt():
    assert R._fmt(None) == "–"
    assert R._fmt(12345.6) == "12,346"
    assert R._fmt(math.pi, 2) == "3.14"


def test_draw_spread_is_the_mean_and_sample_deviation_of_the_draws():
    from pwavenet_tf.evaluation.report import draw_spread, source_title

    avg = {"whole": {"student": {"mcd_db": 2.0, "log_mel_l1": 0.5},
                     "student_seed1": {"mcd_db": 3.0, "log_mel_l1": 0.7},
                     "student_seed2": {"mcd_db": 4.0}},
           "dnsmos": {"student": {"p808_mos": 3.1}}}
    got = draw_spread(avg, ["student", "student_seed1", "student_seed2"])
    assert got["mcd_db"] == {"values": [2.0, 3.0, 4.0], "mean": 3.0, "sd": 1.0}
    assert got["log_mel_l1"]["values"] == [0.5, 0.7]  # a draw without the figure is skipped
    assert abs(got["log_mel_l1"]["sd"] - 0.1414213562) < 1e-9
    assert got["p808_mos"] == {"values": [3.1], "mean": 3.1, "sd": 0.0}
    assert "wer" not in got and "p835_ovrl" not in got
    assert source_title("student_seed12") == "Student (seed 12)"
    assert source_title("griffin_lim") == "Griffin-Lim"
