import os

import numpy as np
import pytest

from pwavenet_tf.audio.audio_io import read_audio
from pwavenet_tf.data.transcripts import read_transcripts
from pwavenet_tf.evaluation import asr as A
from pwavenet_tf.testing.data import ljspeech_mini_dir


def test_normalize_text():
    assert A.normalize_text("Don't stop\u2014forty-two, Mr. O\u2019Neil!") == [
        "don't", "stop", "forty", "two", "mr", "o'neil"]
    assert A.normalize_text("  ...  ") == []
    with pytest.raises(TypeError, match="must be a string"):
        A.normalize_text(None)


def test_word_errors_counts_substitutions_deletions_insertions():
    assert A.word_errors("a b c d", "a b c d") == (0, 4)
    assert A.word_errors("a b c d", "a x c d e") == (2, 4)  # one substitution, one insertion
    assert A.word_errors("a b c d", "b d") == (2, 4)  # two deletions
    assert A.word_errors("The cat.", "the CAT") == (0, 2)  # normalised first
    assert A.word_error_rate("a b c d", "") == 1.0
    assert A.word_error_rate("a b", "x y z w") == 2.0  # can exceed 1
    with pytest.raises(ValueError, match="at least one word"):
        A.word_error_rate("...", "a")


@pytest.fixture(scope="module")
def recognizer():
    reason = A.unavailable_reason()
    if reason:
        pytest.skip(reason)
    return A.SpeechRecognizer.create()


def _clip(clip_id):
    return read_audio(os.path.join(ljspeech_mini_dir(), "wavs", f"{clip_id}.wav"),
                      return_sample_rate=True)


def test_recognizer_reads_real_speech_and_not_noise(recognizer):
    transcript = read_transcripts(ljspeech_mini_dir())["LJ001-0008"]
    audio, sr = _clip("LJ001-0008")
    scores = A.score_clip(recognizer, audio, {"same": audio, "noise": _matched_noise(audio)},
                          sr, transcript)
    # Measured: "it's never been surpassed" for "has never been surpassed." (WER 0.25).
    assert scores["real"]["wer"] <= 0.5
    assert scores["same"]["text"] == scores["real"]["text"]
    assert scores["same"]["wer_vs_real_asr"] == 0.0
    assert scores["noise"]["wer"] >= 0.75
    assert scores["noise"]["wer_vs_real_asr"] >= 0.75


def _matched_noise(audio, seed=0):
    rms = float(np.sqrt(np.mean(np.square(audio))))
    return np.random.default_rng(seed).normal(0.0, rms, audio.shape).astype("float32")


def test_score_clip_without_transcript_has_no_wer(recognizer):
    audio, sr = _clip("LJ001-0008")
    scores = A.score_clip(recognizer, audio, {"same": audio}, sr, transcript=None)
    assert scores["transcript"] is None
    assert scores["real"]["wer"] is None and scores["same"]["wer"] is None
    assert scores["same"]["wer_vs_real_asr"] == 0.0


def test_transcribe_rejects_bad_audio(recognizer):
    with pytest.raises(ValueError, match="mono"):
        recognizer.transcribe(np.zeros((2, 100), "float32"), 16000)
    with pytest.raises(ValueError, match="non-empty"):
        recognizer.transcribe(np.zeros((0,), "float32"), 16000)
    with pytest.raises(ValueError, match="finite"):
        recognizer.transcribe(np.array([0.0, np.nan], "float32"), 16000)
