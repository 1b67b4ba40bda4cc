import os
import wave

import numpy as np
import pytest

from pwavenet_tf.audio import quantize as qz
from pwavenet_tf.audio.audio_io import AudioError, read_audio, resample, write_wav
from pwavenet_tf.testing.data import ljspeech_mini_dir

DATA_DIR = ljspeech_mini_dir()
WAV = os.path.join(DATA_DIR, "wavs", "LJ001-0001.wav")


def test_read_shared_wav_flac_mp3():
    wav = read_audio(WAV)
    assert wav.dtype == np.float32 and wav.shape == (212893,)
    # 16-bit source: every sample is exactly a pcm16 bin centre.
    np.testing.assert_array_equal(qz.quantize_16bit(wav), wav)
    with wave.open(WAV) as w:
        codes = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    np.testing.assert_array_equal(wav, qz.pcm16_to_float(codes))

    flac, rate = read_audio(os.path.join(DATA_DIR, "LJ001-0001.flac"), return_sample_rate=True)
    assert rate == 22050
    np.testing.assert_array_equal(flac, wav)  # lossless: sample-identical

    mp3 = read_audio(os.path.join(DATA_DIR, "LJ001-0001.mp3"))
    assert mp3.dtype == np.float32
    # This MP3 decodes (through tensorflow-io/minimp3) to the same length and alignment as
    # the WAV (encoder delay/padding removed); lossy, so only closely correlated.
    assert abs(len(mp3) - len(wav)) <= 2 * 1152
    n = min(len(mp3), len(wav))
    assert np.corrcoef(mp3[:n], wav[:n])[0, 1] > 0.98


def test_read_with_resampling_changes_length():
    audio, rate = read_audio(WAV, sample_rate=16000, return_sample_rate=True)
    assert rate == 16000
    assert len(audio) == int(np.ceil(212893 * 16000 / 22050))
    same = read_audio(WAV, sample_rate=22050)
    assert len(same) == 212893


def test_write_read_round_trip_exact(tmp_path):
    rng = np.random.default_rng(0)
    audio = qz.quantize_16bit(rng.uniform(-1, 1, 5000))
    audio[:2] = [-1.0, 1.0]
    path = write_wav(tmp_path / "sub" / "dir" / "x.wav", audio, 16000)
    assert os.path.exists(path)
    back, rate = read_audio(path, return_sample_rate=True)
    assert rate == 16000 and back.dtype == np.float32
    np.testing.assert_array_equal(back, audio)
    # Unquantized audio comes back within half a bin; out-of-range audio is clipped.
    raw = rng.uniform(-1.5, 1.5, 1000).astype(np.float32)
    back = read_audio(write_wav(tmp_path / "y.wav", raw, 16000))
    np.testing.assert_array_equal(back, qz.quantize_16bit(raw))
    assert back.max() <= 1.0 and back.min() >= -1.0


def _write_raw_wav(path, frames: bytes, channels: int, rate: int, bits: int, tag: int = 1):
    block = channels * bits // 8
    fmt = (
        tag.to_bytes(2, "little") + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
        + (rate * block).to_bytes(4, "little") + block.to_bytes(2, "little")
        + bits.to_bytes(2, "little")
    )
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt
    body += b"data" + len(frames).to_bytes(4, "little") + frames
    with open(path, "wb") as f:
        f.write(b"RIFF" + len(body).to_bytes(4, "little") + body)


def test_wav_formats_and_stereo_mix(tmp_path):
    # Stereo int16: mixed to mono by averaging.
    left = np.array([-32768, 0, 32767, 100], np.int16)
    right = np.array([32767, 0, 32767, -100], np.int16)
    _write_raw_wav(tmp_path / "s.wav", np.stack([left, right], 1).astype("<i2").tobytes(), 2, 8000, 16)
    mono = read_audio(tmp_path / "s.wav")
    expected = (qz.pcm16_to_float(left).astype(np.float64) + qz.pcm16_to_float(right)) / 2
    np.testing.assert_allclose(mono, expected, atol=1e-7)
    # 24-bit PCM: extremes map to exactly -1 and +1.
    codes = np.array([-(2**23), 0, 2**23 - 1], np.int32)
    frames = b"".join(int(c).to_bytes(3, "little", signed=True) for c in codes)
    _write_raw_wav(tmp_path / "p24.wav", frames, 1, 8000, 24)
    np.testing.assert_allclose(read_audio(tmp_path / "p24.wav"), [-1.0, 2**-24, 1.0], atol=1e-7)
    # 32-bit float.
    values = np.array([0.25, -0.5, 1.0], np.float32)
    _write_raw_wav(tmp_path / "f32.wav", values.astype("<f4").tobytes(), 1, 8000, 32, tag=3)
    np.testing.assert_array_equal(read_audio(tmp_path / "f32.wav"), values)


def test_resample_sine_keeps_frequency_and_length():
    sr_in, sr_out, freq = 22050, 24000, 1000.0
    t = np.arange(sr_in) / sr_in
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    y = resample(x, sr_in, sr_out)
    assert y.dtype == np.float32 and len(y) == 24000  # length ratio 24000 / 22050
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * sr_out / len(y) == pytest.approx(freq, abs=1.0)
    # Zero delay, high accuracy away from the edges.
    ref = 0.5 * np.sin(2 * np.pi * freq * np.arange(len(y)) / sr_out)
    assert np.abs(y - ref)[300:-300].max() < 1e-5
    # Downsampling removes content above the new Nyquist frequency (9 kHz > 8 kHz).
    z = resample(0.5 * np.sin(2 * np.pi * 9000 * t), sr_in, 16000)
    assert len(z) == 16000 and np.abs(z[300:-300]).max() < 1e-4
    np.testing.assert_array_equal(resample(x, 16000, 16000), x.astype(np.float32))


def test_resample_errors():
    with pytest.raises(ValueError, match="target_sr=0"):
        resample(np.zeros(10), 16000, 0)
    with pytest.raises(ValueError, match="1-D"):
        resample(np.zeros((2, 10)), 16000, 8000)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found.*nope.wav"):
        read_audio(tmp_path / "nope.wav")


def test_unsupported_extension(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(AudioError, match=r"Unsupported audio file extension '\.txt'.*a\.txt"):
        read_audio(tmp_path / "a.txt")


def test_corrupt_files(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match="Could not decode WAV.*bad.wav"):
        read_audio(tmp_path / "bad.wav")
    (tmp_path / "bad.flac").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioError, match="Could not decode.*bad.flac"):
        read_audio(tmp_path / "bad.flac")
    (tmp_path / "zero.ogg").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty \(0 bytes\).*zero.ogg"):
        read_audio(tmp_path / "zero.ogg")
    # A header without a data chunk.
    (tmp_path / "nodata.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    with pytest.raises(AudioError, match="no 'fmt ' chunk"):
        read_audio(tmp_path / "nodata.wav")


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    with pytest.raises(AudioError, match="no samples.*empty.wav"):
        read_audio(path)


def test_nan_audio(tmp_path):
    values = np.array([0.1, np.nan, 0.2], np.float32)
    _write_raw_wav(tmp_path / "nan.wav", values.astype("<f4").tobytes(), 1, 8000, 32, tag=3)
    with pytest.raises(AudioError, match="NaN or Inf.*nan.wav"):
        read_audio(tmp_path / "nan.wav")
    with pytest.raises(AudioError, match="NaN or Inf"):
        write_wav(tmp_path / "out.wav", values, 8000)
    with pytest.raises(AudioError, match=r"shape \[T\]"):
        write_wav(tmp_path / "out.wav", np.zeros((2, 3)), 8000)


def _fail_mid_write(monkeypatch, exc):
    """Makes the WAV writer put half the frames on disk, then raise `exc`."""
    def writeframes(self, data):
        data = bytes(data)
        self.writeframesraw(data[: len(data) // 2])
        raise exc

    monkeypatch.setattr(wave.Wave_write, "writeframes", writeframes)


def test_write_wav_is_atomic_on_a_full_disk(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "out.wav"
    _fail_mid_write(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError) as info:
        write_wav(str(path), np.zeros(4000, "float32"), 16000)
    # The error propagates, names the file, and nothing is left: no WAV, no temporary.
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(path)
    assert os.listdir(tmp_path) == []


def test_write_wav_failure_keeps_the_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / "out.wav")
    write_wav(path, np.full(100, 0.5, "float32"), 16000)
    before = open(path, "rb").read()
    _fail_mid_write(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_wav(path, np.zeros(4000, "float32"), 16000)
    assert os.listdir(tmp_path) == ["out.wav"]
    assert open(path, "rb").read() == before
    monkeypatch.undo()
    # A successful write replaces it whole, leaving no temporary behind.
    write_wav(path, np.zeros(300, "float32"), 16000)
    assert os.listdir(tmp_path) == ["out.wav"]
    assert read_audio(path).shape == (300,)


def test_write_wav_onto_a_folder_names_it(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        write_wav(str(tmp_path), np.zeros(10, "float32"), 16000)
    assert info.value.filename == str(tmp_path)
    assert os.listdir(tmp_path) == []
