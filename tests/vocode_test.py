"""`pwavenet vocode` on the shared clips: exported and training-directory models."""

import os
import wave

import numpy as np

from pwavenet_tf.audio.audio_io import read_audio, resample, write_wav
from pwavenet_tf.cli import main
from pwavenet_tf.config import load_config
from pwavenet_tf.inference import features_from_file

from .export_test import cli_export, model_dir


def _wav_info(path):
    with wave.open(path, "rb") as w:
        return w.getsampwidth(), w.getframerate(), w.getnchannels(), w.getnframes()


def test_vocode_clips_with_the_exported_student(tmp_path_factory, tmp_path, data_dir, capsys):
    base, _ = cli_export(tmp_path_factory, "student")
    # A 16 kHz copy: inputs of any rate are resampled to the model's 22,050 Hz.
    clip = read_audio(os.path.join(data_dir, "wavs", "LJ001-0003.wav"))
    low = str(tmp_path / "LJ001-0003_16k.wav")
    write_wav(low, resample(clip, 22050, 16000), 16000)
    inputs = [os.path.join(data_dir, "wavs", "LJ001-0002.wav"),
              os.path.join(data_dir, "LJ001-0001.mp3"), low]
    out = tmp_path / "out"
    capsys.readouterr()
    # BASE/NAME: the highest version is used.
    assert main(["vocode", "--model", os.path.join(base, "pwavenet_student"), "--input", *inputs,
                 "--output-dir", str(out)]) == 0
    captured = capsys.readouterr()
    assert "3/3" in captured.err  # progress over the files
    assert captured.out.count("real-time factor") == 4, captured.out  # 3 files + overall
    assert "vocoded 3 file(s) with the exported student" in captured.out
    for src in inputs:
        name = os.path.splitext(os.path.basename(src))[0] + ".wav"
        width, rate, channels, n = _wav_info(str(out / name))
        expected = len(read_audio(src, sample_rate=22050)) // 256 * 256
        assert (width, rate, channels, n) == (2, 22050, 1, expected), name
        assert np.abs(read_audio(str(out / name))).max() > 0


def test_vocode_mel_arrays_with_a_training_directory_and_an_export(tmp_path_factory, tmp_path,
                                                                   data_dir, capsys):
    config = load_config("tiny")
    feats = features_from_file(os.path.join(data_dir, "wavs", "LJ001-0002.wav"), config.audio)
    npy = str(tmp_path / "feats.npy")
    np.save(npy, feats)
    _, version_path = cli_export(tmp_path_factory, "student")
    for model in (model_dir(tmp_path_factory, "student"), version_path):
        out = tmp_path / os.path.basename(model)
        assert main(["vocode", "--model", model, "--mel", npy, "--output-dir", str(out)]) == 0
        assert _wav_info(str(out / "feats.wav")) == (2, 22050, 1, len(feats) * 256)
        assert "real-time factor" in capsys.readouterr().out


def test_vocode_with_the_teacher_trimmed(tmp_path_factory, tmp_path, data_dir, capsys):
    wav = os.path.join(data_dir, "wavs", "LJ001-0002.wav")
    assert main(["vocode", "--model", model_dir(tmp_path_factory, "teacher"), "--input", wav,
                 "--output-dir", str(tmp_path), "--max-seconds", "0.03"]) == 0
    assert _wav_info(str(tmp_path / "LJ001-0002.wav")) == (2, 22050, 1, 512)
    assert "with the teacher in" in capsys.readouterr().out


def test_vocode_errors(tmp_path_factory, tmp_path, data_dir, capsys):
    student = model_dir(tmp_path_factory, "student")
    wav = os.path.join(data_dir, "wavs", "LJ001-0002.wav")
    capsys.readouterr()
    assert main(["vocode", "--model", student, "--input", str(tmp_path / "nope.wav"),
                 "--output-dir", str(tmp_path)]) == 2
    assert "Input file(s) not found" in capsys.readouterr().err
    assert main(["vocode", "--model", str(tmp_path), "--input", wav,
                 "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "is neither a pwavenet training directory" in err and "nor an exported SavedModel" in err
    bad = str(tmp_path / "bad.npy")
    np.save(bad, np.zeros((5, 40), "float32"))
    assert main(["vocode", "--model", student, "--mel", bad, "--output-dir",
                 str(tmp_path / "o")]) == 2
    assert "must hold a [frames, 80] array" in capsys.readouterr().err
