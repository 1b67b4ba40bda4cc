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


def test_frame_limit_trims_to_whole_frames():
    from pwavenet_tf.commands.vocode import frame_limit

    # The export's limit at its defaults: 600 s at 22,050 Hz, hop 256. Whole seconds would
    # keep 13,230,000 samples, which the export refuses (> 13,229,824 = 51,679 frames).
    assert frame_limit(22050, 256, export_max_frames=51679) == 51679
    assert frame_limit(22050, 256, 600.0) * 256 == 13_229_824
    assert frame_limit(22050, 256, 700.0, export_max_frames=51679) == 51679
    assert frame_limit(22050, 256, 0.03, export_max_frames=51679) == 2  # 661 samples
    assert frame_limit(22050, 256, 0.001) == 1  # at least one frame
    assert frame_limit(22050, 256) is None


class _FakeExport:
    """What `vocode.run` uses of an export; refuses audio longer than `max_frames * hop`,
    as the SavedModel's signature does."""

    sample_rate, hop, uses_mel = 8000, 256, True
    max_seconds = 1.0
    max_frames = int(1.0 * 8000 // 256)  # 31 frames, 7,936 samples (not 8,000)
    description = "a fake export"

    def vocode_audio(self, audio):
        if len(audio) > self.max_frames * self.hop:
            raise ValueError(f"The exported model rejected the input: {len(audio)} > "
                             f"{self.max_frames * self.hop} samples")
        return audio[: len(audio) // self.hop * self.hop]


def test_vocode_trims_long_audio_to_what_the_export_accepts(tmp_path, monkeypatch, capsys):
    from pwavenet_tf.commands import vocode

    monkeypatch.setattr(vocode, "open_model", lambda path, args: _FakeExport())
    src = str(tmp_path / "long.wav")
    write_wav(src, np.full(12000, 0.25, "float32"), 8000)  # 1.5 s, over the 1 s limit
    out = tmp_path / "out"
    assert main(["vocode", "--model", "fake", "--input", src, "--output-dir", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"note: {src} is 1.5 s long; only the first 0.99 s (31 frames) are vocoded" \
        in captured.err
    assert _wav_info(str(out / "long.wav")) == (2, 8000, 1, 31 * 256)
    # A shorter --max-seconds wins (and needs no note); the export's limit is not exceeded.
    assert main(["vocode", "--model", "fake", "--input", src, "--output-dir", str(out),
                 "--max-seconds", "0.1"]) == 0
    assert "note:" not in capsys.readouterr().err
    assert _wav_info(str(out / "long.wav")) == (2, 8000, 1, 3 * 256)


def test_vocode_streams_the_student_equal_to_one_pass(tmp_path_factory, tmp_path, data_dir,
                                                      capsys):
    """A training-directory student streams chunk by chunk into the WAV (`--chunk-seconds`);
    the file equals the one-pass audio of the same seed (to one 16-bit step)."""
    from pwavenet_tf.inference import load_model
    from pwavenet_tf.models.student_generator import StudentGenerator

    student_dir = model_dir(tmp_path_factory, "student")
    _, student, config = load_model(student_dir)
    feats = features_from_file(os.path.join(data_dir, "wavs", "LJ001-0002.wav"),
                               config.audio)[:40]
    npy = str(tmp_path / "feats.npy")
    np.save(npy, feats)
    want = np.asarray(StudentGenerator(student).generate(feats[None], seed=(3, 0)))[0]
    for chunk_seconds in ("0.05", "1"):  # 4 frames per chunk; everything in one chunk
        out = tmp_path / chunk_seconds
        assert main(["vocode", "--model", student_dir, "--mel", npy, "--output-dir", str(out),
                     "--seed", "3", "--chunk-seconds", chunk_seconds]) == 0
        got = read_audio(str(out / "feats.wav"))
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1.5 / 32768, chunk_seconds
    assert "real-time factor" in capsys.readouterr().out
    # `generate` streams the same way.
    wav = str(tmp_path / "gen.wav")
    assert main(["generate", "--model", student_dir, "--mel", npy, "--output", wav,
                 "--seed", "3", "--chunk-seconds", "0.05"]) == 0
    assert np.abs(read_audio(wav) - want).max() <= 1.5 / 32768
