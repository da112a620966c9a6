"""System recipes from the config (light module: imported by the Snakefile at parse time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["BACKENDS", "BASELINE_FILE_OPTIONS", "PSEUDO_LABEL_FEATURES", "PSEUDO_LABEL_METHODS",
           "REPRESENTATIVE_OPTIONS", "SSL_OPTIONS", "SystemRecipe", "check_ssl_options", "check_stage1_reuse"]

#: ``embedding``: a net trained on the trainset's label column, scored by −max cosine to
#: representatives (the seed method and its ablations); the others are frame baselines
#: (:mod:`asdflow.baselines`): fitted on the training clips, scoring every clip directly;
#: ``ensemble`` combines the scores of member systems (:mod:`asdflow.ensemble`).
BACKENDS = ("embedding", "gmm", "autoencoder", "cae_svdd", "serial_oe", "ensemble")

#: Options of a frame baseline that name input files: they become inputs of the fit job (it
#: waits for them and reruns when they change). The value ``synthetic`` of an option listed with
#: a file name stands for that file of the built-in synthetic data (``serial_oe.anomalies:
#: synthetic`` = the anomalous training clips the generator writes, ``train_anomalies.csv``).
BASELINE_FILE_OPTIONS: dict[str, dict[str, str | None]] = {
    "serial_oe": {"anomalies": "train_anomalies.csv", "pretrained": None},
}

#: How a stage >= 2 relabels the original clips: ``kmeans`` (seed 000's k-means pseudo-labels,
#: §4.2.2), ``gmm_bic`` (seed 003 §2.2.3: PCA + a Gaussian mixture per machine type, BIC count)
#: or ``oracle`` (a diagnostic: the true attribute combination per machine type x domain).
#: ``pseudo_labels: true`` takes the configured ``pseudo_labels.method`` (kmeans or gmm_bic).
PSEUDO_LABEL_METHODS = ("kmeans", "gmm_bic", "oracle")

#: What the clustering of ``kmeans``/``gmm_bic`` pseudo-labels runs on: ``stage`` (the previous
#: stage's training embeddings) or ``beats`` (a frozen BEATs model loaded from the user's
#: checkpoint, config ``beats.checkpoint``; seed 003 §2.2.3).
PSEUDO_LABEL_FEATURES = ("stage", "beats")

#: The keys of the ``scoring`` block that the paper's scoring (k-means representatives, −max
#: cosine; :func:`asdflow.systems.fit_representatives`) reads; the other keys belong to the
#: further back-ends and must not rerun the representatives.
REPRESENTATIVE_OPTIONS = ("k_source", "target_mode", "k_target", "renormalize", "per_section")

#: Keys of ``train.ssl`` (seed 002's StatEx/FeatEx, :class:`asdflow.train.SSLConfig`).
SSL_OPTIONS = ("statex", "featex", "variant", "prob", "weight")


def check_ssl_options(system: str, network: str, ssl: Any) -> None:
    """Raise ``ValueError`` naming ``system`` when its ``train.ssl`` options are invalid.

    A mapping of :data:`SSL_OPTIONS`; ``statex``/``featex`` booleans; ``variant`` paper|code;
    ``prob`` in [0, 1]; FeatEx (seed 002 §3.3) exchanges one of TWO branch embeddings, so it
    needs the two-branch ``Wilkinghoff`` network (``Ba`` has three branches).
    """
    where = f"system {system}: train.ssl"
    if not isinstance(ssl, Mapping):
        raise ValueError(f"{where} must be a mapping of {list(SSL_OPTIONS)}, got {ssl!r}")
    unknown = sorted(set(ssl) - set(SSL_OPTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {list(SSL_OPTIONS)})")
    for key in ("statex", "featex"):
        if not isinstance(ssl.get(key, False), bool):
            raise ValueError(f"{where}.{key} must be true or false, got {ssl[key]!r}")
    if ssl.get("variant", "paper") not in ("paper", "code"):
        raise ValueError(f"{where}.variant must be paper or code, got {ssl['variant']!r}")
    prob = ssl.get("prob", 0.5)
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
        raise ValueError(f"{where}.prob must be a number in [0, 1], got {prob!r}")
    if ssl.get("featex") and network != "Wilkinghoff":
        raise ValueError(f"{where}.featex exchanges one of two branch embeddings (seed 002 §3.3) and needs "
                         f"network: Wilkinghoff, not {network}")


@dataclass(frozen=True)
class SystemRecipe:
    name: str
    backend: str
    network: str = "Ba"
    labels: str = "machine"
    triplet: bool = False
    external: str = "none"  # none | score (paper §4.1.1) | random (Table 4 ablation), stages >= 2
    # true: pseudo-labels of the configured method (pseudo_labels.method) from the previous stage
    # (§4.2.2); "kmeans" | "gmm_bic": that method whatever the config says; "oracle": the true
    # attribute combinations per machine x domain (diagnostic); false: the stage-1 labels
    pseudo_labels: bool | str = False
    # features the clustering runs on: None = pseudo_labels.features of the config; stage | beats
    pseudo_label_features: str | None = None
    # the system's own scoring back-end (e.g. smote_knn for DCASE2025-Spec): always computed (added
    # to scoring.backends) and reported as <system>@<scoring>; None = only the configured ones
    scoring: str | None = None
    n_max: int = 1000
    stages: int = 1
    train: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)  # frame baselines: overrides of their config block
    stage1_from: str | None = None  # a system whose stage-1 model is this one's (copied, not retrained)
    # ensembles (backend: ensemble, asdflow.ensemble): member specs, zsum | rank, weights, groups
    members: tuple[str, ...] = ()
    combine: str = "zsum"
    weights: tuple[float, ...] | None = None
    per_section: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(self.members or ()))
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        if self.backend not in BACKENDS:
            raise ValueError(f"system {self.name}: backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend != "embedding" and (self.stages != 1 or self.uses_external or self.pseudo_labels):
            raise ValueError(f"system {self.name}: the {self.backend} backend has one stage, no external data "
                             "and no pseudo-labels")
        if self.external not in ("none", "score", "random"):
            raise ValueError(f"system {self.name}: external must be none, score or random, got {self.external!r}")
        if self.stages < 1:
            raise ValueError(f"system {self.name}: stages must be >= 1")
        if self.stages > 1 and self.external == "none" and not self.pseudo_labels:
            raise ValueError(f"system {self.name}: stages > 1 need external data or pseudo-labels")
        if self.pseudo_labels not in (True, False, *PSEUDO_LABEL_METHODS):
            raise ValueError(f"system {self.name}: pseudo_labels must be true, false or one of "
                             f"{PSEUDO_LABEL_METHODS}, got {self.pseudo_labels!r}")
        if self.pseudo_label_features not in (None, *PSEUDO_LABEL_FEATURES):
            raise ValueError(f"system {self.name}: pseudo_label_features must be one of {PSEUDO_LABEL_FEATURES}, "
                             f"got {self.pseudo_label_features!r}")
        if self.scoring is not None and self.backend != "embedding":
            raise ValueError(f"system {self.name}: scoring (a scoring back-end) needs the embedding backend")
        if self.backend == "ensemble":
            if len(self.members) < 2:
                raise ValueError(f"system {self.name}: an ensemble needs at least 2 members")
            if self.combine not in ("zsum", "rank"):
                raise ValueError(f"system {self.name}: combine must be zsum or rank, got {self.combine!r}")
            if self.weights is not None and len(self.weights) != len(self.members):
                raise ValueError(f"system {self.name}: {len(self.weights)} weights for {len(self.members)} members")
        elif self.members or self.weights is not None:
            raise ValueError(f"system {self.name}: members and weights are keys of ensembles (backend: ensemble)")
        if "ssl" in self.train:
            if self.backend != "embedding":
                raise ValueError(f"system {self.name}: train.ssl needs the embedding backend")
            check_ssl_options(self.name, self.network, self.train["ssl"])
        if self.stage1_from is not None and (self.backend != "embedding" or self.stage1_from == self.name):
            raise ValueError(f"system {self.name}: stage1_from needs the embedding backend and another system, "
                             f"got {self.stage1_from!r}")

    @property
    def pseudo_label_method(self) -> str | None:
        """``"kmeans"`` (also for ``true``), ``"gmm_bic"``, ``"oracle"`` or None (no relabelling
        in stages >= 2). See :meth:`resolved_pseudo_label_method` for ``true`` with a config."""
        if isinstance(self.pseudo_labels, str):
            return self.pseudo_labels
        return "kmeans" if self.pseudo_labels else None

    def resolved_pseudo_label_method(self, config_method: str = "kmeans") -> str | None:
        """The clustering this system's stages >= 2 use: ``pseudo_labels: true`` takes
        ``config_method`` (``pseudo_labels.method``), a named method is itself."""
        if self.pseudo_labels is True:
            return config_method
        return self.pseudo_label_method

    def resolved_pseudo_label_features(self, config_features: str = "stage") -> str | None:
        """``stage`` | ``beats`` for clustered pseudo-labels, None for oracle or no pseudo-labels."""
        if self.pseudo_label_method in (None, "oracle"):
            return None
        return self.pseudo_label_features or config_features

    @property
    def uses_external(self) -> bool:
        return self.external != "none"

    @classmethod
    def from_config(cls, name: str, definitions: Mapping[str, Mapping[str, Any]]) -> "SystemRecipe":
        if name not in definitions:
            raise KeyError(f"system {name!r} is not defined in system_definitions (known: {sorted(definitions)})")
        return cls(name=name, **definitions[name])

    def baseline_options(self, config: Mapping[str, Any], synth_dir: str | None = None) -> dict[str, Any]:
        """Options of a frame baseline: the config block named after the backend + overrides.

        A file option (:data:`BASELINE_FILE_OPTIONS`) set to ``synthetic`` becomes the path of
        the built-in data's file under ``synth_dir`` (the synthetic data's folder; ``None``
        when the run reads real data, which makes ``synthetic`` an error)."""
        opts = {**(config.get(self.backend) or {}), **self.options}
        for key, synth_name in BASELINE_FILE_OPTIONS.get(self.backend, {}).items():
            if opts.get(key) != "synthetic":
                continue
            if synth_name is None:
                raise ValueError(f"system {self.name}: {self.backend}.{key} cannot be 'synthetic'")
            if synth_dir is None:
                raise ValueError(f"system {self.name}: {self.backend}.{key}: 'synthetic' needs the built-in data "
                                 "(dcase_root: null); give the path of a list instead")
            opts[key] = f"{synth_dir}/{synth_name}"
        return opts

    def baseline_files(self, config: Mapping[str, Any], synth_dir: str | None = None) -> list[str]:
        """The input files the frame baseline's options name (:data:`BASELINE_FILE_OPTIONS`)."""
        opts = self.baseline_options(config, synth_dir)
        return [str(opts[k]) for k in BASELINE_FILE_OPTIONS.get(self.backend, {}) if opts.get(k)]

    @property
    def uses_beats(self) -> bool:
        """Whether the network is the frozen BEATs front-end (needs ``beats.checkpoint``)."""
        return self.network == "BEATs"

    def needs_beats(self, config_features: str = "stage") -> bool:
        """Whether any stage loads the BEATs checkpoint: network BEATs, or stages >= 2 clustering
        BEATs features (``config_features``: ``pseudo_labels.features``)."""
        return self.uses_beats or (self.stages > 1 and self.resolved_pseudo_label_features(config_features) == "beats")

    def train_options(self, base: Mapping[str, Any], seed: int,
                      beats: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The TrainConfig dict for this system: the global train block + overrides + seed.

        ``ssl`` mappings merge key by key (a system's ``train.ssl`` over the global one); an empty
        or absent ``ssl`` is left out, so systems without SSL keep their options unchanged.
        Network ``BEATs``: its options are the ``beats`` config block (the checkpoint) plus the
        system's own ``train.net``; the global ``train.net`` (CNN widths) does not apply.
        """
        opts = {**base, **self.train}
        ssl = {**(base.get("ssl") or {}), **(self.train.get("ssl") or {})}
        opts.pop("ssl", None)
        if ssl:
            check_ssl_options(self.name, self.network, ssl)
            opts["ssl"] = ssl
        if self.uses_beats:
            opts["net"] = {"checkpoint": (beats or {}).get("checkpoint"), **(self.train.get("net") or {})}
        trip = dict(opts.pop("triplet_options", {}) or {})
        trip["enabled"] = self.triplet
        return {**opts, "network": self.network, "triplet": trip, "seed": seed}


def check_stage1_reuse(definitions: Mapping[str, Mapping[str, Any]], train: Mapping[str, Any]) -> dict[str, str]:
    """Validate every ``stage1_from`` of the system definitions and return system -> base.

    A system may take its stage-1 model from a base system only when that stage 1 is the same
    training: the base exists, has the embedding backend, and its labels, network and train
    options (:meth:`SystemRecipe.train_options` of the global ``train`` block, triplet loss
    included) equal the system's. Chains resolve (A from B from C); a cycle is an error.
    Raises ``ValueError`` naming both systems and the first differing key.
    """
    bases: dict[str, str] = {}
    for name in definitions:
        r = SystemRecipe.from_config(name, definitions)
        if r.stage1_from is None:
            continue
        if r.stage1_from not in definitions:
            raise ValueError(f"system {name}: stage1_from {r.stage1_from!r} is not in system_definitions "
                             f"(known: {sorted(definitions)})")
        base = SystemRecipe.from_config(r.stage1_from, definitions)
        if base.backend != "embedding":
            raise ValueError(f"system {name}: stage1_from {base.name!r} has the {base.backend} backend, "
                             "not embedding")
        mine, theirs = ({"labels": x.labels, "network": x.network, **x.train_options(train, 0)}
                        for x in (r, base))
        for key in sorted(set(mine) | set(theirs), key=lambda k: (k not in ("labels", "network"), k)):
            if mine.get(key) != theirs.get(key):
                raise ValueError(
                    f"system {name}: stage1_from {base.name!r}, but their stage-1 training differs in "
                    f"{'train.' if key not in ('labels', 'network') else ''}{key}: "
                    f"{name} has {mine.get(key)!r}, {base.name} has {theirs.get(key)!r}")
        bases[name] = base.name
    for name in bases:  # no cycles
        seen, cur = {name}, bases[name]
        while cur in bases:
            cur = bases[cur]
            if cur in seen:
                raise ValueError(f"system {name}: stage1_from forms a cycle through {cur!r}")
            seen.add(cur)
    return bases
