"""The official DCASE Task 2 autoencoder baseline (``nttcslab/dcase2023_task2_baseline_ae``).

See docs/reference.md §5. Features: log-mel (n_fft 1024, hop 512, 128 mels)
with 5 consecutive frames stacked → 640-d vectors (:mod:`asdflow.baselines.features`). One dense
autoencoder per machine type, the ``725b304`` network (the one the DCASE task descriptions
report)::

    640 → [128 BN ReLU] → 3 × [128 BN ReLU] → [8 BN ReLU] → [128 BN ReLU] → 3 × [128 BN ReLU] → 640

BatchNorm1d with momentum 0.01 and eps 1e-3 (the baseline's Keras-style settings). Training:
Adam lr 1e-3, batch 256, 100 epochs, shuffled, 10 % of the frame vectors held out for a
validation loss (logged). Clip score = mean squared reconstruction error over the clip's frame
vectors (the baseline's MSE mode); decision thresholds are fitted by the common evaluator.

``network: small`` selects the later stored version's "temporal stacking" network for inputs of
640-d or wider (640 → 256 → 64 → 256 → 640) instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from asdflow.baselines.features import context_frames, logmel

__all__ = ["AENet", "AutoencoderBaseline", "fit_autoencoder_baseline", "score_autoencoder_baseline"]

log = logging.getLogger(__name__)


def _block(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=0.01, eps=1e-3), nn.ReLU()]


class AENet(nn.Module):
    """Dense autoencoder of the DCASE baseline: ``[B, input_dim] → [B, input_dim]``."""

    def __init__(self, input_dim: int = 640, hidden: int = 128, bottleneck: int = 8, n_hidden: int = 4) -> None:
        super().__init__()
        enc = _block(input_dim, hidden)
        for _ in range(n_hidden - 1):
            enc += _block(hidden, hidden)
        enc += _block(hidden, bottleneck)
        dec = _block(bottleneck, hidden)
        for _ in range(n_hidden - 1):
            dec += _block(hidden, hidden)
        dec += [nn.Linear(hidden, input_dim)]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.config = {"input_dim": input_dim, "hidden": hidden, "bottleneck": bottleneck, "n_hidden": n_hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


_NETWORKS: Mapping[str, Mapping[str, int]] = {
    "baseline": {"hidden": 128, "bottleneck": 8, "n_hidden": 4},  # 725b304 (DCASE task descriptions)
    "small": {"hidden": 256, "bottleneck": 64, "n_hidden": 1},  # later "temporal stacking mode"
}


@dataclass
class AutoencoderBaseline:
    """Fitted per-machine autoencoders (state dicts, CPU) plus their feature settings."""

    states: dict[str, dict[str, torch.Tensor]]
    net_config: dict[str, int]
    sr: int = 16000
    context: int = 5
    feature_kw: dict = field(default_factory=dict)
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def features(self, waves: np.ndarray) -> list[np.ndarray]:
        lms = logmel(np.atleast_2d(waves), self.sr, **self.feature_kw)
        return [context_frames(lm, self.context) for lm in lms]

    def net(self, machine: str) -> AENet:
        if machine not in self.states:
            raise KeyError(f"autoencoder baseline has no model for machine type {machine!r} "
                           f"(fitted: {sorted(self.states)})")
        net = AENet(**self.net_config)
        net.load_state_dict(self.states[machine])
        return net.eval()


def _train_one(x: np.ndarray, net: AENet, *, epochs: int, batch_size: int, lr: float, validation_split: float,
               gen: torch.Generator) -> list[dict[str, float]]:
    data = torch.from_numpy(x)
    perm = torch.randperm(len(data), generator=gen)
    n_val = int(round(validation_split * len(data))) if len(data) > 1 else 0
    val, train = data[perm[:n_val]], data[perm[n_val:]]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(train), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(train), batch_size):
            xb = train[order[i:i + batch_size]]
            if len(xb) < 2:  # BatchNorm needs two samples in training mode
                continue
            loss = torch.mean((net(xb) - xb) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + loss.item() * len(xb), count + len(xb)
        entry = {"epoch": epoch + 1, "loss": total / max(count, 1)}
        if n_val:
            net.eval()
            with torch.no_grad():
                entry["val_loss"] = float(torch.mean((net(val) - val) ** 2))
        history.append(entry)
    return history


def fit_autoencoder_baseline(
    train_waves_by_machine: Mapping[str, np.ndarray],
    sr: int = 16000,
    *,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 1e-3,
    validation_split: float = 0.1,
    context: int = 5,
    network: str = "baseline",
    max_frames: int | None = None,
    seed: int = 0,
    feature_kw: Mapping[str, Any] | None = None,
) -> AutoencoderBaseline:
    """Train one autoencoder per machine type on its training clips' frame vectors.

    ``train_waves_by_machine``: machine → ``[N, T]`` float32 waves (normal clips, both domains).
    ``max_frames`` (None = all) subsamples the frame vectors per machine uniformly at random.
    Deterministic for a seed on CPU.
    """
    if network not in _NETWORKS:
        raise ValueError(f"autoencoder network must be one of {sorted(_NETWORKS)}, got {network!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = AutoencoderBaseline({}, {}, sr=sr, context=context, feature_kw=dict(feature_kw or {}))
    for machine, waves in sorted(train_waves_by_machine.items()):
        feats = np.concatenate(model.features(waves)).astype(np.float32)
        if max_frames is not None and len(feats) > max_frames:
            feats = feats[rng.choice(len(feats), max_frames, replace=False)]
        net = AENet(input_dim=feats.shape[1], **_NETWORKS[network])
        gen = torch.Generator().manual_seed(seed)
        hist = _train_one(feats, net, epochs=epochs, batch_size=batch_size, lr=lr,
                          validation_split=validation_split, gen=gen)
        last = hist[-1] if hist else {}
        log.info("autoencoder %s: %d frame vectors, %d epochs, loss %.4f, val loss %s", machine, len(feats),
                 epochs, last.get("loss", float("nan")), f"{last['val_loss']:.4f}" if "val_loss" in last else "-")
        model.states[str(machine)] = {k: v.detach().clone() for k, v in net.state_dict().items()}
        model.net_config = dict(net.config)
        model.history[str(machine)] = hist
    return model


def score_autoencoder_baseline(model: AutoencoderBaseline,
                               waves_by_machine: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per machine, one score per clip: mean squared reconstruction error of its frame vectors."""
    out = {}
    for machine, waves in waves_by_machine.items():
        net = model.net(str(machine))
        scores = []
        with torch.no_grad():
            for f in model.features(waves):
                x = torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32))
                scores.append(float(torch.mean((net(x) - x) ** 2)))
        out[str(machine)] = np.asarray(scores, dtype=np.float64)
    return out
