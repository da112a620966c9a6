"""Losses (sub-cluster AdaCos, subspace, triplet) and the batch augmentations they use
(waveform mixup; SNR mixing and pitch shift for the triplet positives/negatives)."""

from asdflow.losses.scac import SubClusterAdaCos, initial_scale
from asdflow.losses.subspace import SubspaceLoss, mixup
from asdflow.losses.triplet import (choose_partners, phase_vocoder, pitch_shift, sample_semitones, sample_snr_db,
                                    snr_mix, triplet_loss)

__all__ = [
    "SubClusterAdaCos",
    "SubspaceLoss",
    "choose_partners",
    "initial_scale",
    "mixup",
    "phase_vocoder",
    "pitch_shift",
    "sample_semitones",
    "sample_snr_db",
    "snr_mix",
    "triplet_loss",
]
