"""Intelligibility as the word error rate of an offline speech recognizer (optional:
`pip install "pwavenet_tf[eval]"`).

The recognizer is PocketSphinx with the US-English acoustic model, language model and
pronouncing dictionary that ship inside the `pocketsphinx` wheel (no network needed).
Audio is resampled to 16 kHz, converted to 16-bit PCM and decoded as one utterance.

The word error rate (WER) is the word-level Levenshtein distance (substitutions +
deletions + insertions) between a reference and a hypothesis divided by the number of
reference words, both normalised first (`normalize_text`: lowercase, punctuation
removed, apostrophes inside words kept). It is 0 for a perfect transcription, 1 for an
empty one, and can exceed 1 when the hypothesis inserts words.

`pocketsphinx` is imported lazily; `SpeechRecognizer.create()` returns None when it is
missing (`unavailable_reason()` says why) and callers skip the scores with a note.
"""

import importlib.util
import os
import re

import numpy as np

SAMPLE_RATE = 16000
INSTALL_HINT = 'pip install "pwavenet_tf[eval]"  (pocketsphinx)'
MODEL_DESCRIPTION = "PocketSphinx, default US-English model"

# A word: letters/digits, with apostrophes only inside ("don't", "o'clock").
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def unavailable_reason():
    """None when the recognizer can run, else why not (a sentence naming the package)."""
    spec = importlib.util.find_spec("pocketsphinx")
    if spec is None or not spec.submodule_search_locations:
        return f"pocketsphinx is not installed; {INSTALL_HINT}"
    model = os.path.join(list(spec.submodule_search_locations)[0], "model", "en-us")
    if not os.path.isdir(model):
        return f"the pocketsphinx package has no English model in {model}"
    return None


# --------------------------------------------------------------------------- WER


def normalize_text(text):
    """The words of `text`: lowercase, punctuation removed, inner apostrophes kept.

    Hyphens and other punctuation separate words ("forty-two" -> ["forty", "two"]).
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a string. Received: text={text!r}")
    return _WORD.findall(text.lower().translate(_APOSTROPHES))


def word_errors(reference, hypothesis):
    """`(errors, n_ref)`: the word-level edit distance and the number of reference words.

    Both texts are normalised with `normalize_text`; errors count substitutions,
    deletions and insertions, each 1.
    """
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    # One row of the Levenshtein table at a time: row[j] = distance(ref[:i], hyp[:j]).
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1,          # deletion of r
                                           row[j - 1] + 1,      # insertion of h
                                           diagonal + (r != h))  # substitution / match
    return row[-1], len(ref)


def word_error_rate(reference, hypothesis):
    """Word errors of `hypothesis` divided by the number of words of `reference`.

    Raises:
        ValueError: the reference has no words (the rate is undefined).
    """
    errors, n_ref = word_errors(reference, hypothesis)
    if n_ref == 0:
        raise ValueError(
            f"The word error rate needs a reference with at least one word. "
            f"Received: reference={reference!r}"
        )
    return errors / n_ref


# --------------------------------------------------------------------------- recognizer


class SpeechRecognizer:
    """PocketSphinx (default US-English model) transcribing mono audio; one decoder reused."""

    def __init__(self):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    @classmethod
    def create(cls):
        """A recognizer, or None when pocketsphinx is missing."""
        if unavailable_reason() is not None:
            return None
        return cls()

    def transcribe(self, audio, sample_rate):
        """The recognized text (lowercase words, "" when nothing is recognized) of mono
        float audio in [-1, 1] (louder samples are clipped) at `sample_rate` Hz."""
        audio = np.asarray(audio, dtype="float32")
        if audio.ndim != 1:
            raise ValueError(f"`transcribe` expects 1-D (mono) audio. Received: "
                             f"audio.shape={audio.shape}")
        if audio.size == 0:
            raise ValueError("`transcribe` needs non-empty audio. Received: audio.shape=(0,)")
        if not np.all(np.isfinite(audio)):
            raise ValueError("`transcribe` needs finite audio. Received: audio containing "
                             "NaN or Inf")
        if sample_rate != SAMPLE_RATE:
            from pwavenet_tf.audio.audio_io import resample

            audio = resample(audio, sample_rate, SAMPLE_RATE)
        from pwavenet_tf.audio.quantize import float_to_pcm16

        pcm = float_to_pcm16(audio).astype("<i2").tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None and hyp.hypstr else ""


def _wer_or_none(reference, hypothesis):
    if reference is None or not normalize_text(reference):
        return None
    return word_error_rate(reference, hypothesis)


def score_clip(recognizer, real, resynthesized, sample_rate, transcript=None):
    """ASR of a clip's real audio and its resyntheses, with word error rates.

    Args:
        recognizer: a `SpeechRecognizer`.
        real: the real audio `[T]`.
        resynthesized: `{source: audio [T']}` (e.g. "student", "griffin_lim").
        sample_rate: of all the audio.
        transcript: the clip's text, or None when unknown.

    Returns:
        `{"transcript": transcript, "real": {"text", "wer"}, source: {"text", "wer",
        "wer_vs_real_asr"}, ...}`: "wer" is against the transcript (None when unknown),
        "wer_vs_real_asr" against the recognizer's text of the real audio (None when that
        is empty).
    """
    real_text = recognizer.transcribe(real, sample_rate)
    out = {"transcript": transcript,
           "real": {"text": real_text, "wer": _wer_or_none(transcript, real_text)}}
    for src, audio in resynthesized.items():
        text = recognizer.transcribe(audio, sample_rate)
        out[src] = {"text": text, "wer": _wer_or_none(transcript, text),
                    "wer_vs_real_asr": _wer_or_none(real_text, text)}
    return out
