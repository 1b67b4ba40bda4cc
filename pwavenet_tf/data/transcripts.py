"""Transcripts of a corpus directory, from an LJ Speech `metadata.csv`.

`metadata.csv` has one `id|text|normalized text` line per clip, no header (the layout
that `corpus.list_corpus` reads the ids of). The normalized text (numbers and
abbreviations spelled out) is the transcript, falling back to the text when the third
column is missing or empty; clips whose both fields are empty have no transcript.
"""

from __future__ import annotations

import os

from pwavenet_tf.data.corpus import METADATA_FILE

__all__ = ["read_transcripts"]


def read_transcripts(data_dir: str | os.PathLike) -> dict[str, str]:
    """`{clip id: transcript}` from `data_dir/metadata.csv`; `{}` when there is no such file.

    Clips with no text (empty fields, or an id alone on its line) are left out, so a
    missing key means "transcript unknown".
    """
    path = os.path.join(os.fspath(data_dir), METADATA_FILE)
    if not os.path.isfile(path):
        return {}
    transcripts = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = [x.strip() for x in line.rstrip("\r\n").split("|")]
            if not fields[0]:
                continue
            text = next((x for x in (fields[2:3] + fields[1:2]) if x), None)
            if text:
                transcripts[fields[0]] = text
    return transcripts
