"""What the teacher and the student share: their conditioning front end."""

import math


class ConditionedModel:
    """Mixin for models that own `feature_normalizer`, `upsampler`, `speaker_embedding`
    (None for single-speaker) and `upsample_factors`: the conditioning pieces of the
    forward pass, used by training, generation, distillation and export alike."""

    @property
    def hop_length(self):
        return math.prod(self.upsample_factors)

    @property
    def multi_speaker(self):
        return self.speaker_embedding is not None

    def upsample_conditioning(self, features):
        """Raw frame features `[B, F, D]` -> conditioning `[B, F * hop, C]`."""
        return self.upsampler(self.feature_normalizer(features))

    def global_conditioning(self, speaker_id):
        """Speaker embedding `[B, S]`, or None for a single-speaker model."""
        if self.speaker_embedding is None:
            return None
        return self.speaker_embedding(speaker_id)

    def set_feature_stats(self, mean, std):
        """Assigns the dataset statistics the model normalises its features with."""
        self.feature_normalizer.set_stats(mean, std)
