"""BEATs (Chen et al., ICML 2023) as a frozen front-end, loaded from a user-supplied checkpoint.

Seed 003 uses BEATs in two roles: frozen and mean-pooled (768-d) as a feature extractor for the
GMM-BIC pseudo-labels (§2.2.3) and as a frozen front-end scored by the back-end (§2.2.1, the
"frozen pre-trained SSL" rows). Both need the published weights (``BEATs_iter3.pt``), which
cannot be downloaded by this workflow: the user gives the file (config ``beats.checkpoint``).

The checkpoint format is the one the BEATs authors publish: a ``torch.save``-d dict with
``cfg`` (the BEATsConfig fields) and ``model`` (the state dict). The architecture below is
written from the public reference implementation (``microsoft/unilm``, ``beats/BEATs.py`` and
``beats/backbone.py``) so that its parameter names are the checkpoint's:

* ``patch_embedding`` (Conv2d 1 → ``embed_dim``, kernel = stride = ``input_patch_size``, bias
  only with ``conv_bias``) over the normalised 128-bin log-mel fbank ``[B, 1, frames, 128]``;
  the patches are flattened time-major to a token sequence, ``layer_norm`` (over
  ``embed_dim``), then ``post_extract_proj`` (Linear ``embed_dim`` → ``encoder_embed_dim``,
  present only when the two differ);
* ``encoder``: ``pos_conv.0`` — a grouped Conv1d (kernel ``conv_pos``, padding
  ``conv_pos // 2``, ``conv_pos_groups`` groups) under weight normalisation over dim 2, stored
  as ``weight_g``/``weight_v``/``bias`` — then the dropping of the last frame for an even
  kernel and a GELU, added to the input; ``encoder.layer_norm`` (post-norm models, as BEATs:
  ``layer_norm_first: false``) ; then ``encoder_layers`` × ``layers.<i>``: ``self_attn``
  (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` with biases; ``relative_attention_bias``,
  an Embedding of ``num_buckets`` × heads, built in layer 0 and shared by every layer (so each
  layer's key holds the same tensor); gated relative positions ``grep_linear`` (Linear
  head_dim → 8) and ``grep_a`` [1, heads, 1, 1]), ``self_attn_layer_norm``, ``fc1``, ``fc2``,
  ``final_layer_norm``; with ``deep_norm`` the residual is scaled by (2·layers)^(1/4);
* ``predictor`` (Linear → ``predictor_class``) only in fine-tuned checkpoints
  (``finetuned_model: true``): loaded, never used here.

Relative position bias (T5-style buckets, bidirectional): half of the buckets per direction,
exact below ``num_buckets // 4``, logarithmic up to ``max_distance``. Gated relative position
(``gru_rel_pos``): per head and query position, ``a, b = sigmoid(sum of groups of 4 of
grep_linear(q))``, gate = a·(b·grep_a − 1) + 2, which multiplies the position bias.
The reference scales q by 1/32 and subtracts the row maximum before multiplying by 32 again (a
numerical-stability device for fp16); in float32 this is the same softmax, computed directly
here. Dropout and layer drop are inactive (the front-end is frozen, always in eval mode).

Key names not certain: the names above follow the reference code as recalled when this was
written; the test builds a checkpoint with these names. Loading reports every missing or
unexpected key with the file name, so a real checkpoint that differs fails loudly, not
silently. ``layers.<i>.self_attn.relative_attention_bias.weight`` of layers i ≥ 1 may be
absent from a checkpoint (it is the shared tensor of layer 0) and is then taken from layer 0.

Fbank: the reference calls ``torchaudio.compliance.kaldi.fbank`` (torchaudio cannot be
installed here); :func:`kaldi_fbank` re-implements the settings BEATs uses in torch (see its
doc), then BEATs's normalisation ``(fbank − 15.41663) / (2 · 6.55582)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BEATS_DEFAULTS", "BEATsModel", "BEATsFrontend", "BEATsCheckpointError", "kaldi_fbank",
           "load_beats_checkpoint", "FBANK_MEAN", "FBANK_STD"]

FBANK_MEAN, FBANK_STD = 15.41663, 6.55582

#: BEATsConfig defaults of the reference code; a checkpoint's ``cfg`` overrides them
#: (BEATs_iter3: input_patch_size 16, embed_dim 512, 12 layers of 768-d, 12 heads, FFN 3072,
#: deep_norm, relative_position_embedding with gru_rel_pos).
BEATS_DEFAULTS: dict[str, Any] = {
    "input_patch_size": -1, "embed_dim": 512, "conv_bias": False,
    "encoder_layers": 12, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12,
    "activation_fn": "gelu", "layer_wise_gradient_decay_ratio": 1.0, "layer_norm_first": False, "deep_norm": False,
    "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.0, "encoder_layerdrop": 0.0,
    "dropout_input": 0.0, "conv_pos": 128, "conv_pos_groups": 16, "relative_position_embedding": False,
    "num_buckets": 320, "max_distance": 1280, "gru_rel_pos": False, "finetuned_model": False,
    "predictor_dropout": 0.1, "predictor_class": 527,
}


class BEATsCheckpointError(RuntimeError):
    """A BEATs checkpoint that is missing, unreadable or does not fit the architecture."""


# --- fbank -------------------------------------------------------------------------------


def _mel(f: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def _mel_banks(n_mels: int, n_fft: int, sample_rate: float, low: float, high: float) -> torch.Tensor:
    """Kaldi's triangular mel filters ``[n_mels, n_fft // 2 + 1]`` (last column, Nyquist, zero)."""
    half = n_fft // 2
    width = sample_rate / n_fft
    mel_lo, mel_hi = _mel(torch.tensor(low, dtype=torch.float64)), _mel(torch.tensor(high, dtype=torch.float64))
    delta = (mel_hi - mel_lo) / (n_mels + 1)
    b = torch.arange(n_mels, dtype=torch.float64).unsqueeze(1)
    left, centre, right = mel_lo + b * delta, mel_lo + (b + 1) * delta, mel_lo + (b + 2) * delta
    mel = _mel(width * torch.arange(half, dtype=torch.float64)).unsqueeze(0)
    up, down = (mel - left) / (centre - left), (right - mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1)).float()


def kaldi_fbank(wave: torch.Tensor, *, sample_rate: int = 16000, n_mels: int = 128, frame_ms: float = 25.0,
                shift_ms: float = 10.0, preemphasis: float = 0.97, low_freq: float = 20.0) -> torch.Tensor:
    """Log-mel filterbank ``[B, frames, n_mels]`` of ``[B, T]`` waveforms, as
    ``torchaudio.compliance.kaldi.fbank(w, num_mel_bins=128, sample_frequency=16000,
    frame_length=25, frame_shift=10)`` with its other defaults: no dither, frames without edge
    padding (``snip_edges``: 1 + (T − 400) // 160 frames), DC offset removed per frame,
    pre-emphasis 0.97 (the first sample against itself), Povey window (Hann^0.85, symmetric),
    zero-padded to the next power of two (512), power spectrum, Kaldi mel filters from 20 Hz to
    Nyquist (mel = 1127 ln(1 + f/700)), natural log floored at float32 epsilon. The caller
    scales the waveform (BEATs: × 2^15). Differences from torchaudio: none by design; float
    rounding differs (the filters are built in float64). Clips shorter than one frame give an
    error.
    """
    if wave.dim() != 2:
        raise ValueError(f"expected [B, T] waveforms, got {tuple(wave.shape)}")
    win = int(sample_rate * frame_ms * 0.001)
    hop = int(sample_rate * shift_ms * 0.001)
    if wave.shape[1] < win:
        raise ValueError(f"clips of {wave.shape[1]} samples are shorter than one {win}-sample fbank frame")
    n_fft = 1 << (win - 1).bit_length()
    with torch.autocast(device_type=wave.device.type, enabled=False):
        frames = wave.float().unfold(1, win, hop)  # [B, F, win]
        frames = frames - frames.mean(dim=-1, keepdim=True)
        prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = frames - preemphasis * prev
        window = torch.hann_window(win, periodic=False, dtype=torch.float32, device=wave.device).pow(0.85)
        spec = torch.fft.rfft(frames * window, n=n_fft).abs().pow(2)
        banks = _mel_banks(n_mels, n_fft, sample_rate, low_freq, sample_rate / 2).to(wave.device)
        mel = spec @ banks.T
        return torch.log(mel.clamp_min(torch.finfo(torch.float32).eps))


# --- the model -----------------------------------------------------------------------------


class _WeightNormConv1d(nn.Module):
    """Grouped Conv1d with weight normalisation over dim 2 (``torch.nn.utils.weight_norm(conv,
    name="weight", dim=2)``: parameters ``weight_g`` [1, 1, k], ``weight_v``, ``bias``)."""

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel))
        nn.init.normal_(self.weight_v, 0.0, math.sqrt(4.0 / (kernel * channels)))
        self.weight_g = nn.Parameter(self.weight_v.detach().norm(dim=(0, 1), keepdim=True).clone())
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        return F.conv1d(x, w, self.bias, padding=self.padding, groups=self.groups)


class _SamePad(nn.Module):
    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.remove] if self.remove else x


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, *, rel_bias: bool, num_buckets: int, max_distance: int,
                 gru_rel_pos: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"encoder_embed_dim {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.has_rel_bias, self.gru_rel_pos = rel_bias, gru_rel_pos
        if rel_bias:
            self.relative_attention_bias = nn.Embedding(num_buckets, heads)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        if gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def _buckets(self, rel: torch.Tensor) -> torch.Tensor:
        nb = self.num_buckets // 2
        out = (rel > 0).long() * nb
        rel = rel.abs()
        max_exact = nb // 2
        large = max_exact + (torch.log(rel.float() / max_exact) / math.log(self.max_distance / max_exact)
                             * (nb - max_exact)).long()
        large = torch.clamp(large, max=nb - 1)
        return out + torch.where(rel < max_exact, rel, large)

    def position_bias(self, n: int) -> torch.Tensor:
        """``[heads, n, n]`` relative position bias (query i, key j: bucket of j − i)."""
        pos = torch.arange(n, dtype=torch.long, device=self.relative_attention_bias.weight.device)
        return self.relative_attention_bias(self._buckets(pos[None, :] - pos[:, None])).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, pos_bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, d = x.shape  # batch-first here; the reference is time-first (same arithmetic)
        if self.has_rel_bias and pos_bias is None:
            pos_bias = self.position_bias(n)
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)  # [B, H, N, hd]
        k = self.k_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        logits = (q * self.head_dim**-0.5) @ k.transpose(-1, -2)
        if pos_bias is not None:
            bias = pos_bias.unsqueeze(0)
            if self.gru_rel_pos:
                g = torch.sigmoid(self.grep_linear(q).view(b, self.heads, n, 2, 4).sum(-1))
                gate_a, gate_b = g.chunk(2, dim=-1)
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias
            logits = logits + bias
        out = torch.softmax(logits, dim=-1) @ v
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d)), pos_bias


class _Layer(nn.Module):
    def __init__(self, c: Mapping[str, Any]) -> None:
        super().__init__()
        dim = c["encoder_embed_dim"]
        if c["activation_fn"] != "gelu":
            raise BEATsCheckpointError(f"activation_fn {c['activation_fn']!r} is not supported (BEATs uses gelu)")
        self.self_attn = _Attention(dim, c["encoder_attention_heads"], rel_bias=c["relative_position_embedding"],
                                    num_buckets=c["num_buckets"], max_distance=c["max_distance"],
                                    gru_rel_pos=c["gru_rel_pos"])
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, c["encoder_ffn_embed_dim"])
        self.fc2 = nn.Linear(c["encoder_ffn_embed_dim"], dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.norm_first = bool(c["layer_norm_first"])
        self.alpha = math.pow(2 * c["encoder_layers"], 0.25) if c["deep_norm"] else 1.0

    def forward(self, x: torch.Tensor, pos_bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.norm_first:
            a, pos_bias = self.self_attn(self.self_attn_layer_norm(x), pos_bias)
            x = x + a
            return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x)))), pos_bias
        a, pos_bias = self.self_attn(x, pos_bias)
        x = self.self_attn_layer_norm(x * self.alpha + a)
        x = self.final_layer_norm(x * self.alpha + self.fc2(F.gelu(self.fc1(x))))
        return x, pos_bias


class _Encoder(nn.Module):
    def __init__(self, c: Mapping[str, Any]) -> None:
        super().__init__()
        dim = c["encoder_embed_dim"]
        self.pos_conv = nn.Sequential(_WeightNormConv1d(dim, c["conv_pos"], c["conv_pos_groups"]),
                                      _SamePad(c["conv_pos"]), nn.GELU())
        self.layers = nn.ModuleList(_Layer(c) for _ in range(c["encoder_layers"]))
        if c["relative_position_embedding"]:  # one bias table, shared by every layer (as the reference)
            for layer in list(self.layers)[1:]:
                layer.self_attn.relative_attention_bias = self.layers[0].self_attn.relative_attention_bias
        self.layer_norm = nn.LayerNorm(dim)
        self.norm_first = bool(c["layer_norm_first"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.norm_first:
            x = self.layer_norm(x)
        pos_bias = None
        for layer in self.layers:
            x, pos_bias = layer(x, pos_bias)
        return self.layer_norm(x) if self.norm_first else x


class BEATsModel(nn.Module):
    """The BEATs network (no tokenizer): ``forward(wave [B, T] at 16 kHz) -> [B, tokens, D]``."""

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        unknown = sorted(set(cfg or {}) - set(BEATS_DEFAULTS))
        c = {**BEATS_DEFAULTS, **{k: v for k, v in (cfg or {}).items() if k in BEATS_DEFAULTS}}
        self.cfg, self.unknown_cfg = c, unknown
        if c["input_patch_size"] < 1:
            raise BEATsCheckpointError(f"cfg input_patch_size must be >= 1, got {c['input_patch_size']}")
        self.patch_embedding = nn.Conv2d(1, c["embed_dim"], kernel_size=c["input_patch_size"],
                                         stride=c["input_patch_size"], bias=c["conv_bias"])
        self.layer_norm = nn.LayerNorm(c["embed_dim"])
        self.post_extract_proj = (nn.Linear(c["embed_dim"], c["encoder_embed_dim"])
                                  if c["embed_dim"] != c["encoder_embed_dim"] else None)
        self.encoder = _Encoder(c)
        self.predictor = nn.Linear(c["encoder_embed_dim"], c["predictor_class"]) if c["finetuned_model"] else None

    @property
    def dim(self) -> int:
        return int(self.cfg["encoder_embed_dim"])

    def fbank(self, wave: torch.Tensor) -> torch.Tensor:
        """BEATs's ``preprocess``: Kaldi fbank of ``wave · 2^15``, normalised."""
        return (kaldi_fbank(wave * 2**15) - FBANK_MEAN) / (2 * FBANK_STD)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        fb = self.fbank(wave)
        p = self.cfg["input_patch_size"]
        if fb.shape[1] < p or fb.shape[2] < p:
            raise ValueError(f"fbank of {fb.shape[1]} frames is shorter than one {p}-frame patch "
                             f"(clips need >= {(p - 1) * 160 + 400} samples)")
        x = self.patch_embedding(fb.unsqueeze(1))  # [B, E, frames/p, mels/p]
        x = self.layer_norm(x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)


def load_beats_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> BEATsModel:
    """A frozen, eval-mode :class:`BEATsModel` with the weights of a BEATs checkpoint file
    (``{"cfg": {...}, "model": state_dict}``). Raises :class:`BEATsCheckpointError` naming the
    file and the problem (missing file, not a checkpoint, wrong keys or shapes)."""
    path = Path(path)
    if not path.is_file():
        raise BEATsCheckpointError(f"BEATs checkpoint {path}: no such file (set beats.checkpoint to the "
                                   "BEATs_iter3.pt you downloaded from the BEATs authors)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise BEATsCheckpointError(f"BEATs checkpoint {path}: cannot be read by torch.load ({exc})") from exc
    if not isinstance(ckpt, Mapping) or "cfg" not in ckpt or "model" not in ckpt:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise BEATsCheckpointError(f"BEATs checkpoint {path}: expected a dict with 'cfg' and 'model' "
                                   f"(the BEATs release format), got {keys}")
    cfg = ckpt["cfg"]
    cfg = dict(cfg if isinstance(cfg, Mapping) else vars(cfg))
    try:
        model = BEATsModel(cfg)
    except (BEATsCheckpointError, ValueError, KeyError, TypeError) as exc:
        raise BEATsCheckpointError(f"BEATs checkpoint {path}: its cfg does not build a BEATs model: {exc}") from exc
    state = dict(ckpt["model"])
    own = model.state_dict()
    shared = "encoder.layers.0.self_attn.relative_attention_bias.weight"
    for key in own:  # the shared position-bias table may be stored once (layer 0)
        if key.endswith("self_attn.relative_attention_bias.weight") and key not in state and shared in state:
            state[key] = state[shared]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} keys of the wrong shape (e.g. {k}: checkpoint "
                         f"{tuple(state[k].shape)}, cfg gives {tuple(own[k].shape)})")
        raise BEATsCheckpointError(f"BEATs checkpoint {path}: the weights do not fit the architecture its cfg "
                                   f"describes: {'; '.join(parts)}")
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return model.to(device)


class BEATsFrontend(nn.Module):
    """Frozen BEATs, mean-pooled over its output tokens: ``{"cat": [B, D], "branches": [[B, D]]}``
    with D = ``encoder_embed_dim`` (768 for BEATs_iter3), the embedding-network interface of
    :mod:`asdflow.nets` (network ``BEATs``, options ``checkpoint``). Always in eval mode, no
    trainable parameters; the training loop skips it (:attr:`frozen`)."""

    frozen = True

    def __init__(self, n_samples: int, checkpoint: str | None = None) -> None:
        super().__init__()
        if not checkpoint:
            raise BEATsCheckpointError("the BEATs network needs a checkpoint file: set beats.checkpoint "
                                       "(a BEATs_iter3.pt from the BEATs authors)")
        self.checkpoint = str(checkpoint)
        self.n_samples = n_samples
        self.beats = load_beats_checkpoint(checkpoint)
        self.emb_dim = self.beats.dim
        self.branch_dims = [self.emb_dim]

    def train(self, mode: bool = True) -> "BEATsFrontend":
        return super().train(False)  # frozen: dropout-free eval mode always

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        z = self.beats(wave).mean(dim=1)
        return {"cat": z, "branches": [z]}
