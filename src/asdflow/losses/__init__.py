"""Losses (sub-cluster AdaCos, subspace, triplet) and waveform augmentations."""

from asdflow.losses.augment import choose_partners, mixup, phase_vocoder, pitch_shift, sample_semitones, snr_mix
from asdflow.losses.scac import SubClusterAdaCos, SubspaceLoss
from asdflow.losses.triplet import triplet_loss

__all__ = [
    "SubClusterAdaCos",
    "SubspaceLoss",
    "choose_partners",
    "mixup",
    "phase_vocoder",
    "pitch_shift",
    "sample_semitones",
    "snr_mix",
    "triplet_loss",
]
