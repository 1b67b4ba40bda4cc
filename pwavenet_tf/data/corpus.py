"""Listing the utterances of a corpus directory, and a deterministic train/valid split.

Two layouts are recognised by `list_corpus`:

- **LJ Speech**: `data_dir/metadata.csv` (`id|text|normalized`, no header) and
  `data_dir/wavs/<id>.wav`. Ids come from the first column (in file order, then sorted);
  every listed wav must exist. Single speaker (id 0, named after `data_dir`).
- **Plain folder**: every `.wav/.flac/.mp3/.ogg` file under `data_dir`, recursively. The
  utterance id is the path relative to `data_dir` without extension, with `/` separators.
  If some files live in subfolders, each first-level subfolder is a speaker (speaker ids
  0, 1, ... in sorted name order); files directly in `data_dir` then belong to a speaker
  named `"<root>"`. If all files are directly in `data_dir` there is one speaker, named
  after `data_dir`.

`features_path` is set when a precomputed feature file exists: `<audio stem><feature_ext>`
beside the audio file (e.g. `wavs/LJ001-0001.npy`), else `data_dir/features/<id><feature_ext>`;
otherwise it is None.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from pwavenet_tf.audio.audio_io import SUPPORTED_EXTENSIONS

ROOT_SPEAKER = "<root>"
METADATA_FILE = "metadata.csv"  # LJ Speech: `id|text|normalized text` lines, no header

__all__ = ["CorpusError", "METADATA_FILE", "ROOT_SPEAKER", "Utterance", "list_corpus", "split_corpus"]


class CorpusError(ValueError):
    """A corpus directory is missing, empty or inconsistent."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One audio clip of a corpus."""

    id: str
    audio_path: str
    features_path: str | None
    speaker_id: int


def _features_path(data_dir: str, audio_path: str, utt_id: str, feature_ext: str) -> str | None:
    beside = os.path.splitext(audio_path)[0] + feature_ext
    if os.path.isfile(beside):
        return beside
    in_features = os.path.join(data_dir, "features", *utt_id.split("/")) + feature_ext
    if os.path.isfile(in_features):
        return in_features
    return None


def _list_ljspeech(data_dir: str, feature_ext: str) -> tuple[list[Utterance], list[str]]:
    metadata = os.path.join(data_dir, METADATA_FILE)
    ids: list[str] = []
    seen: set[str] = set()
    with open(metadata, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            utt_id = line.split("|", 1)[0].strip()
            if not utt_id:
                raise CorpusError(f"Empty id on line {line_no} of metadata. Received: path={metadata!r}")
            if utt_id in seen:
                raise CorpusError(
                    f"Duplicate id {utt_id!r} on line {line_no} of metadata. Received: path={metadata!r}"
                )
            seen.add(utt_id)
            ids.append(utt_id)
    if not ids:
        raise CorpusError(f"No utterances listed in metadata. Received: path={metadata!r}")
    utterances = []
    for utt_id in sorted(ids):
        audio_path = os.path.join(data_dir, "wavs", utt_id + ".wav")
        if not os.path.isfile(audio_path):
            raise CorpusError(
                f"Audio file listed in metadata.csv is missing: {audio_path!r}. "
                f"Received: data_dir={data_dir!r}"
            )
        utterances.append(
            Utterance(utt_id, audio_path, _features_path(data_dir, audio_path, utt_id, feature_ext), 0)
        )
    speaker = os.path.basename(os.path.normpath(data_dir))
    return utterances, [speaker]


def _list_plain(data_dir: str, feature_ext: str) -> tuple[list[Utterance], list[str]]:
    found: dict[str, str] = {}  # id -> audio path
    for root, dirs, files in os.walk(data_dir):
        dirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in SUPPORTED_EXTENSIONS:
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(os.path.join(root, stem), data_dir)
            utt_id = rel.replace(os.sep, "/")
            if utt_id in found:
                raise CorpusError(
                    f"Two audio files share the id {utt_id!r}: {found[utt_id]!r} and {path!r}. "
                    f"Received: data_dir={data_dir!r}"
                )
            found[utt_id] = path
    if not found:
        raise CorpusError(
            f"No audio files ({', '.join(SUPPORTED_EXTENSIONS)}) found. Received: data_dir={data_dir!r}"
        )
    nested = any("/" in utt_id for utt_id in found)
    if nested:
        speaker_of = {u: (u.split("/", 1)[0] if "/" in u else ROOT_SPEAKER) for u in found}
        speakers = sorted(set(speaker_of.values()))
    else:
        speakers = [os.path.basename(os.path.normpath(data_dir))]
        speaker_of = {u: speakers[0] for u in found}
    index = {name: i for i, name in enumerate(speakers)}
    utterances = [
        Utterance(
            utt_id,
            found[utt_id],
            _features_path(data_dir, found[utt_id], utt_id, feature_ext),
            index[speaker_of[utt_id]],
        )
        for utt_id in sorted(found)
    ]
    return utterances, speakers


def list_corpus(
    data_dir: str | os.PathLike,
    feature_ext: str = ".npy",
    return_speakers: bool = False,
) -> list[Utterance] | tuple[list[Utterance], list[str]]:
    """Lists a corpus (LJ Speech layout or plain folder; see the module docstring).

    Returns the utterances sorted by id; with `return_speakers=True`, also the speaker
    names, where `speaker_names[utt.speaker_id]` is the speaker of `utt`.

    Raises:
        CorpusError: missing directory, no audio, a listed wav missing, duplicate ids.
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise CorpusError(f"Corpus directory not found. Received: data_dir={data_dir!r}")
    if not feature_ext.startswith("."):
        raise CorpusError(f"`feature_ext` must start with '.'. Received: feature_ext={feature_ext!r}")
    is_lj = os.path.isfile(os.path.join(data_dir, METADATA_FILE)) and os.path.isdir(
        os.path.join(data_dir, "wavs")
    )
    utterances, speakers = (_list_ljspeech if is_lj else _list_plain)(data_dir, feature_ext)
    return (utterances, speakers) if return_speakers else utterances


def split_corpus(
    utterances: list[Utterance], num_validation: int, seed: int = 0
) -> tuple[list[Utterance], list[Utterance]]:
    """Deterministic random split into `(train, valid)`; both keep the input order.

    Raises:
        ValueError: `num_validation` is negative or leaves no training utterance.
    """
    n = len(utterances)
    if isinstance(num_validation, bool) or not isinstance(num_validation, (int, np.integer)):
        raise ValueError(f"`num_validation` must be an integer. Received: num_validation={num_validation!r}")
    if num_validation < 0 or num_validation >= n:
        raise ValueError(
            f"`num_validation` must be in [0, {n}) for {n} utterances. "
            f"Received: num_validation={num_validation}"
        )
    valid_idx = set(np.random.default_rng(seed).permutation(n)[:num_validation].tolist())
    train = [u for i, u in enumerate(utterances) if i not in valid_idx]
    valid = [u for i, u in enumerate(utterances) if i in valid_idx]
    return train, valid
