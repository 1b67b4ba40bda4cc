"""Loads a training corpus once: split, decode, features, normalisation statistics."""

import dataclasses
import os

from pwavenet_tf.audio.feature_stats import (
    compute_feature_stats,
    load_feature_stats,
    save_feature_stats,
)
from pwavenet_tf.data.corpus import list_corpus, split_corpus
from pwavenet_tf.data.dataset import UtteranceCache, make_dataset, with_data_sharding
from pwavenet_tf.data.shard_writer import is_shard_folder
from pwavenet_tf.training.checkpointing import STATS_FILE


@dataclasses.dataclass
class CorpusData:
    """A corpus held in memory: train/valid utterances with decoded audio and features."""

    train: UtteranceCache
    valid: UtteranceCache | None
    stats: dict
    audio_config: object

    def dataset(self, split, window_samples, batch_size, seed, multi_speaker, shuffle=True,
                start_step=0):
        """Endless batches of a split; `start_step`: the first batch is that step's."""
        cache = self.train if split == "train" else self.valid
        ds = make_dataset(
            cache.utterances, self.audio_config, window_samples, batch_size,
            seed=seed, shuffle=shuffle, repeat=True, cache=cache, start_step=start_step,
        )
        if not multi_speaker:
            ds = ds.map(lambda x, y: ({k: v for k, v in x.items() if k != "speaker_id"}, y))
        return with_data_sharding(ds)  # as the shard stream: workers split each global batch

    def examples(self, split):
        """`[(Utterance, audio [F*hop], features [F, D])]` of a split."""
        cache = self.train if split == "train" else self.valid
        if cache is None:
            return []
        return [(u, *cache[i]) for i, u in enumerate(cache.utterances)]


def _load_shards(data_dir, audio_config, model_dir):
    from pwavenet_tf.data.shard_dataset import ShardCorpus

    corpus = ShardCorpus(data_dir, audio_config)
    _check_speakers(data_dir, audio_config, corpus.manifest["speaker_ids"])
    stats_path = os.path.join(model_dir, STATS_FILE) if model_dir else None
    if stats_path and os.path.exists(stats_path):
        corpus.stats = load_feature_stats(stats_path, expected_dim=audio_config.conditioning_dim)
    elif stats_path:
        save_feature_stats(corpus.stats, stats_path)
    return corpus


def _check_speakers(data_dir, audio_config, speaker_ids):
    if audio_config.num_speakers <= 1 and any(speaker_ids):
        raise ValueError(
            f"{data_dir} holds several speakers but the config has audio.num_speakers="
            f"{audio_config.num_speakers}; set it to the number of speakers."
        )
    if audio_config.num_speakers > 1:
        top = max(speaker_ids)
        if top >= audio_config.num_speakers:
            raise ValueError(
                f"{data_dir} has speaker id {top} but audio.num_speakers="
                f"{audio_config.num_speakers}."
            )


def load_corpus_data(data_dir, audio_config, num_validation, seed, model_dir, progress=None):
    """Lists, splits and decodes a corpus; statistics are computed once and saved.

    A folder written by `pwavenet prepare-data` (it has a `manifest.json`) is streamed
    instead (`data/shard_dataset.py`: a `ShardCorpus`, the same interface): its split is
    the one fixed at preparation (`num_validation`/`seed` then play no part) and its
    statistics are the manifest's, computed from the same training clips.

    The normalisation statistics are computed from the training split the first time and
    written to `model_dir/feature_stats.json`; later runs (resume) read them back so the
    model's normalisation never changes under it.
    """
    if is_shard_folder(data_dir):
        return _load_shards(data_dir, audio_config, model_dir)
    utterances = list_corpus(data_dir)
    num_validation = min(num_validation, max(0, len(utterances) - 1))
    train, valid = split_corpus(utterances, num_validation, seed=seed)
    _check_speakers(data_dir, audio_config, [u.speaker_id for u in utterances])

    train_data = UtteranceCache(train, audio_config, progress=progress)
    valid_data = UtteranceCache(valid, audio_config, progress=progress) if valid else None
    stats_path = os.path.join(model_dir, STATS_FILE) if model_dir else None
    if stats_path and os.path.exists(stats_path):
        stats = load_feature_stats(stats_path, expected_dim=audio_config.conditioning_dim)
    else:
        stats = compute_feature_stats([train_data[i][1] for i in range(len(train_data))])
        if stats_path:
            save_feature_stats(stats, stats_path)
    return CorpusData(train_data, valid_data, stats, audio_config)
