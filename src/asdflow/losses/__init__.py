"""Losses (sub-cluster AdaCos, subspace, triplet, seed 002's self-supervised StatEx/FeatEx) and
the batch augmentations they use (waveform mixup; SNR mixing and pitch shift for the triplet
positives/negatives; statistics and feature exchanges)."""

from asdflow.losses.scac import SubClusterAdaCos, initial_scale
from asdflow.losses.ssl import SSLBatch, SSLHead, featex, ssl_forward, temporal_statex, triple_labels
from asdflow.losses.subspace import SubspaceLoss, mixup
from asdflow.losses.triplet import (choose_partners, phase_vocoder, pitch_shift, sample_semitones, sample_snr_db,
                                    snr_mix, triplet_loss)

__all__ = [
    "SSLBatch",
    "SSLHead",
    "SubClusterAdaCos",
    "SubspaceLoss",
    "choose_partners",
    "featex",
    "initial_scale",
    "mixup",
    "phase_vocoder",
    "pitch_shift",
    "sample_semitones",
    "sample_snr_db",
    "snr_mix",
    "ssl_forward",
    "temporal_statex",
    "triple_labels",
    "triplet_loss",
]
