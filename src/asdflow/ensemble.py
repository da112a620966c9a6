"""Score ensembles (issue 13): a system whose scores combine the scores of member systems.

An ensemble is a system definition with ``backend: ensemble``::

    Ens-demo:
      backend: ensemble
      members: ["Ba+Ltrp+Ps+Ex", "Ba+Ltrp+Ps+Ex@smote_knn", "Ba+Ltrp/stage1@knn", GMM]
      combine: zsum        # zsum (default) | rank
      weights: [1, 1, 1, 2] # optional, default equal
      per_section: false   # statistics per machine type (default) or per machine x section

**Member syntax** ``<system>[/stage<m>][@<backend>]`` (:data:`MEMBER_SYNTAX`):

* ``<system>``: a key of ``system_definitions`` (it need not be in ``systems``: the workflow
  builds what the ensemble reads);
* ``/stage<m>``: which stage's scores (default: the member's last stage, ``stages``);
* ``@<backend>``: which scoring of an embedding stage: ``kmeans_cos`` (the paper's, default) or a
  further back-end of ``scoring.backends`` (``knn``, ``smote_knn``, ``rescaled_knn``, ``gmm``).
  A frame baseline or another ensemble has one scoring, its own: ``@<its backend>`` or nothing.

Every member is resolved at parse time (:func:`resolve_members`); an unknown system, a stage
beyond the member's ``stages``, a back-end not computed (not in ``scoring.backends``), a
self-reference or a cycle through nested ensembles is a config error naming the ensemble and
the member (:func:`ensemble_problems`, called by :func:`asdflow.configcheck.check_config`).

**Combination** (:func:`combine_scores`), per machine type (x section with ``per_section``),
members aligned by ``clip_id``; no test label and no test-set statistic is used, so one test
clip's ensemble score depends only on that clip and the training data:

* ``zsum``: ``sum_j w_j (s_j - mean_j) / sd_j``, where ``mean_j`` and ``sd_j`` (population sd,
  ddof = 0) are those of member j's *training* scores of the same machine type (both domains;
  every training clip is normal). Training scores are used because they are what a deployed
  system has, the decision thresholds are fitted on them too, and a test-set mean/sd would make
  every clip's score depend on the share of anomalies in the test set. Each member's training
  scores keep its own convention (in-sample for ``kmeans_cos`` and the frame baselines,
  leave-one-out for the kNN back-ends), so its sd describes the scores the thresholds see.
  A member whose training scores of a group have (near-)zero sd (``sd <= 1e-12 * max(1,
  |mean|)``) or fewer than two finite values carries no scale there: it contributes 0 in that
  group (it is left out there, logged and listed in the report as ``left_out``) instead of
  dividing by zero.
* ``rank``: ``sum_j w_j F_j(s_j) / sum_j w_j``, where ``F_j`` is the empirical CDF of member j's
  training scores of the group, with ties counted half (``(#{t < s} + #{t = s} / 2) / n``), so
  every member is mapped to [0, 1] by its own normal-score distribution. This is a rank
  *relative to the training scores*, not a rank among the test clips (ASDKit-style rank
  ensembles rank the test set, which is transductive); the price is saturation: clips above every
  training score get 1 from that member (and clips below all get 0), so the other members
  separate them. A zero-sd member is a step function here and needs no special case.

The training clips get the same transform, so the ensemble's ``train_scores`` feed its decision
thresholds as any system's. A NaN member score (a machine type without training clips) makes the
ensemble score of that clip NaN.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["COMBINATIONS", "MEMBER_SYNTAX", "EnsembleMember", "EnsembleResult", "MemberSpec", "combine_scores",
           "ensemble_base_systems", "ensemble_problems", "ensembles_in_run", "resolve_members"]

log = logging.getLogger(__name__)

COMBINATIONS = ("zsum", "rank")
MEMBER_SYNTAX = "<system>[/stage<m>][@<backend>]"
#: The paper's scoring of an embedding stage (``asdflow.backends.DEFAULT_BACKEND``; repeated
#: here so that this module stays light for the Snakefile's parse-time checks).
EMBEDDING_DEFAULT = "kmeans_cos"
_MEMBER = re.compile(r"^(?P<system>[^/@\s]+)(?:/stage(?P<stage>\d+))?(?:@(?P<backend>[A-Za-z0-9_]+))?$")
_ID_COLS = ["clip_id", "file_name", "dataset", "machine", "section", "domain", "split", "label"]


@dataclass(frozen=True)
class MemberSpec:
    """A member as written in ``members``: system, optional stage and back-end."""

    system: str
    stage: int | None = None
    backend: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "MemberSpec":
        m = _MEMBER.match(str(spec).strip()) if isinstance(spec, str) else None
        if m is None:
            raise ValueError(f"member {spec!r} is not of the form {MEMBER_SYNTAX}")
        stage = int(m["stage"]) if m["stage"] is not None else None
        if stage is not None and stage < 1:
            raise ValueError(f"member {spec!r}: stages count from 1")
        return cls(m["system"], stage, m["backend"])


@dataclass(frozen=True)
class EnsembleMember:
    """A resolved member: whose scores, of which stage, by which scoring."""

    system: str
    stage: int
    backend: str  # kmeans_cos | knn | smote_knn | rescaled_knn | gmm | a frame baseline | ensemble
    further: bool = False  # a further back-end of an embedding stage (scores under backends/<b>/)

    @property
    def spec(self) -> str:
        """The canonical spelling ``<system>/stage<m>@<backend>``."""
        return f"{self.system}/stage{self.stage}@{self.backend}"

    def scores_dir(self, seed: int | str) -> str:
        d = f"results/{self.system}/seed{seed}/stage{self.stage}"
        return f"{d}/backends/{self.backend}" if self.further else d

    def scores_path(self, seed: int | str, split: str) -> str:
        """``results/.../{train,test}_scores.parquet`` of this member for one seed."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be train or test, got {split!r}")
        return f"{self.scores_dir(seed)}/{split}_scores.parquet"


def _members_of(definition: Mapping[str, Any]) -> list:
    members = definition.get("members")
    return list(members) if isinstance(members, (list, tuple)) else []


def resolve_members(name: str, definitions: Mapping[str, Mapping[str, Any]],
                    scoring_backends: Sequence[str] | None = (EMBEDDING_DEFAULT,)) -> list[EnsembleMember]:
    """The members of ensemble ``name`` with their stage and scoring made explicit.

    ``definitions``: ``system_definitions`` (defaults filled or not: a missing ``stages`` is 1);
    ``scoring_backends``: ``scoring.backends`` (the scorings every embedding stage has; a
    system's own ``scoring`` back-end counts for that system), or None to check the members'
    structure only (an ensemble the run does not compute). Raises ``ValueError`` ("system
    <name>: member '<spec>': ...") on the first bad member."""
    d = definitions.get(name)
    if d is None or d.get("backend") != "ensemble":
        raise ValueError(f"system {name}: not an ensemble (backend: ensemble) in system_definitions")
    out: list[EnsembleMember] = []
    for raw in _members_of(d):
        try:
            spec = MemberSpec.parse(raw)
        except ValueError as e:
            raise ValueError(f"system {name}: {e}") from None
        where = f"system {name}: member {raw!r}"
        if spec.system == name:
            raise ValueError(f"{where}: an ensemble cannot be its own member")
        if spec.system not in definitions:
            raise ValueError(f"{where}: system {spec.system!r} is not in system_definitions "
                             f"(known: {sorted(definitions)})")
        md = definitions[spec.system] or {}
        kind = md.get("backend")
        n_stages = int(md.get("stages", 1) or 1) if kind == "embedding" else 1
        stage = spec.stage if spec.stage is not None else n_stages
        if not 1 <= stage <= n_stages:
            raise ValueError(f"{where}: {spec.system} has {n_stages} stage(s), no stage {stage}")
        if kind == "embedding":
            backend = spec.backend or EMBEDDING_DEFAULT
            computed = {EMBEDDING_DEFAULT, *(scoring_backends or ()), md.get("scoring")}
            if scoring_backends is not None and backend not in computed:
                raise ValueError(f"{where}: scoring back-end {backend!r} is not computed; add it to "
                                 f"scoring.backends (now {list(scoring_backends)})")
            out.append(EnsembleMember(spec.system, stage, backend, further=backend != EMBEDDING_DEFAULT))
        else:
            if spec.backend not in (None, kind):
                raise ValueError(f"{where}: {spec.system} is a {kind} system with one scoring; "
                                 f"write {spec.system!r} or '{spec.system}@{kind}'")
            out.append(EnsembleMember(spec.system, 1, str(kind)))
    if len(out) < 2:
        raise ValueError(f"system {name}: an ensemble needs at least 2 members, got {len(out)}")
    seen: dict[str, str] = {}
    for raw, m in zip(_members_of(d), out):
        if m.spec in seen:
            raise ValueError(f"system {name}: members {seen[m.spec]!r} and {raw!r} are the same scores "
                             f"({m.spec})")
        seen[m.spec] = raw
    return out


def ensembles_in_run(definitions: Mapping[str, Mapping[str, Any]], systems: Sequence[str]) -> set[str]:
    """The ensembles a run of ``systems`` computes: those listed and, through their members, the
    nested ones."""
    todo, seen = [s for s in systems], set()
    while todo:
        name = todo.pop()
        d = definitions.get(name) or {}
        if name in seen or d.get("backend") != "ensemble":
            continue
        seen.add(name)
        for raw in _members_of(d):
            try:
                todo.append(MemberSpec.parse(raw).system)
            except ValueError:
                pass
    return seen


def ensemble_problems(definitions: Mapping[str, Mapping[str, Any]],
                      scoring_backends: Sequence[str] = (EMBEDDING_DEFAULT,),
                      systems: Sequence[str] | None = None) -> list[tuple[list, str]]:
    """(key path, message) for every problem of the ensembles in ``definitions``: bad members
    (:func:`resolve_members`), ensemble keys on other systems, other keys on ensembles, weights
    that do not match the members, cycles through nested ensembles.

    With ``systems`` (the run's grid), only the ensembles the run computes must find their
    members' scoring back-ends in ``scoring_backends``; the others are checked for structure."""
    out: list[tuple[list, str]] = []
    run = ensembles_in_run(definitions, systems) if systems is not None else set(definitions)
    ens_keys = ("members", "combine", "weights", "per_section")
    for name, d in definitions.items():
        d = d or {}
        key = ["system_definitions", name]
        if d.get("backend") != "ensemble":
            for k in ens_keys:
                if k in d:
                    out.append((key + [k], f"system {name}: {k} is a key of ensembles (backend: ensemble), "
                                           f"not of the {d.get('backend')} backend"))
            continue
        for k in sorted(set(d) - {"backend", *ens_keys}, key=str):
            out.append((key + [k], f"system {name}: {k} does not apply to an ensemble (its keys: backend, "
                                   f"{', '.join(ens_keys)})"))
        try:
            members = resolve_members(name, definitions, scoring_backends if name in run else None)
        except ValueError as e:
            out.append((key + ["members"], str(e)))
            continue
        w = d.get("weights")
        if w is not None:
            if not isinstance(w, (list, tuple)) or len(w) != len(members):
                out.append((key + ["weights"], f"system {name}: {len(w) if isinstance(w, (list, tuple)) else w!r}"
                                               f" weights for {len(members)} members"))
            elif not all(isinstance(x, (int, float)) and np.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
                out.append((key + ["weights"], f"system {name}: weights must be finite, >= 0 and not all 0, "
                                               f"got {list(w)}"))
        if d.get("combine", "zsum") not in COMBINATIONS:
            out.append((key + ["combine"], f"system {name}: combine must be one of {list(COMBINATIONS)}, "
                                           f"got {d.get('combine')!r}"))
    bad = {p[1] for p, _ in out if p[-1] == "members"}
    for name, d in definitions.items():  # nested ensembles: no cycles
        if (d or {}).get("backend") == "ensemble" and name not in bad:
            try:
                ensemble_base_systems(name, definitions)
            except ValueError as e:
                out.append((["system_definitions", name, "members"], str(e)))
    return out


def ensemble_base_systems(name: str, definitions: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The non-ensemble systems an ensemble reads, through nested ensembles (``ValueError`` on a
    cycle)."""

    def walk(n: str, trail: tuple[str, ...]) -> set[str]:
        d = definitions.get(n) or {}
        if d.get("backend") != "ensemble":
            return {n}
        if n in trail:
            raise ValueError(f"system {trail[0]}: ensemble members form a cycle: {' -> '.join(trail + (n,))}")
        out: set[str] = set()
        for raw in _members_of(d):
            try:
                member = MemberSpec.parse(raw).system
            except ValueError:  # reported by resolve_members
                continue
            out |= walk(member, trail + (n,))
        return out

    return walk(name, ())


# --- combination -----------------------------------------------------------------------------------


@dataclass
class EnsembleResult:
    """Train and test SCORES tables of the ensemble and a report (statistics per member and group)."""

    train: pd.DataFrame
    test: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


def _show(ids: Sequence[str], n: int = 5) -> str:
    ids = sorted(map(str, ids))
    return ", ".join(ids[:n]) + (f", ... ({len(ids)} in all)" if len(ids) > n else "")


def _aligned(members: Sequence[tuple[str, pd.DataFrame]], split: str, keys: list[str]) -> tuple[pd.DataFrame,
                                                                                                  np.ndarray]:
    """The first member's identity columns and a (clips x members) score matrix aligned by clip_id."""
    ref_name, ref = members[0]
    for name, df in members:
        dup = df["clip_id"][df["clip_id"].duplicated()]
        if len(dup):
            raise ValueError(f"ensemble member {name}: {split} scores list clips more than once: {_show(dup.unique())}")
    ref = ref.reset_index(drop=True)
    ref_ids = pd.Index(ref["clip_id"])
    cols = []
    for name, df in members:
        ids = pd.Index(df["clip_id"])
        missing, extra = ref_ids.difference(ids), ids.difference(ref_ids)
        if len(missing) or len(extra):
            parts = []
            if len(missing):
                parts.append(f"lacks {len(missing)} {split} clips that {ref_name} scores: {_show(missing)}")
            if len(extra):
                parts.append(f"scores {len(extra)} {split} clips that {ref_name} does not: {_show(extra)}")
            raise ValueError(f"ensemble member {name} does not cover the same clips as member {ref_name}: "
                             + "; ".join(parts))
        m = df.set_index("clip_id").reindex(ref_ids)
        for k in keys:
            bad = (m[k].astype(str).to_numpy() != ref[k].astype(str).to_numpy())
            if bad.any():
                raise ValueError(f"ensemble member {name}: {k} of {split} clips differs from member {ref_name}'s: "
                                 f"{_show(ref_ids[bad])}")
        cols.append(m["score"].to_numpy(dtype=np.float64))
    ident = ref[[c for c in _ID_COLS if c in ref.columns]]
    return ident, (np.column_stack(cols) if cols else np.zeros((len(ref), 0)))


def _mid_ecdf(reference: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(#{t < x} + #{t = x} / 2) / n`` over the sorted finite ``reference`` (NaN stays NaN)."""
    ref = np.sort(reference)
    lo = np.searchsorted(ref, x, side="left")
    hi = np.searchsorted(ref, x, side="right")
    u = (lo + 0.5 * (hi - lo)) / len(ref)
    return np.where(np.isnan(x), np.nan, u)


def combine_scores(
    members: Sequence[tuple[str, pd.DataFrame, pd.DataFrame]], *, combine: str = "zsum",
    weights: Sequence[float] | None = None, per_section: bool = False
) -> EnsembleResult:
    """Combine the members' SCORES tables into the ensemble's (module docstring: ``zsum``, ``rank``).

    ``members``: ``(name, train scores, test scores)`` per member (``name`` only for messages and
    the report). Clips are aligned by ``clip_id``; a member that does not score exactly the first
    member's clips of a split raises ``ValueError`` naming it and the missing or extra clips.
    Returns the ensemble's train and test tables (the first member's identity columns, in its
    order, plus ``score``) and a report with, per member and group, ``n_train``, ``mean`` and
    ``sd`` of its training scores and ``left_out`` (zsum, zero sd)."""
    if combine not in COMBINATIONS:
        raise ValueError(f"combine must be one of {COMBINATIONS}, got {combine!r}")
    if len(members) < 1:
        raise ValueError("an ensemble needs members")
    names = [m[0] for m in members]
    w = np.ones(len(members)) if weights is None else np.asarray(list(weights), dtype=np.float64)
    if w.shape != (len(members),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be {len(members)} finite numbers >= 0, not all 0; got {list(np.ravel(w))}")
    keys = ["machine", "section"] if per_section else ["machine"]
    train_id, train_s = _aligned([(n, tr) for n, tr, _ in members], "train", keys)
    test_id, test_s = _aligned([(n, te) for n, _, te in members], "test", keys)
    train_out, test_out = np.full(len(train_id), np.nan), np.full(len(test_id), np.nan)
    groups: list[dict[str, Any]] = []

    def mask(ident: pd.DataFrame, key: tuple) -> np.ndarray:
        m = np.ones(len(ident), bool)
        for c, v in zip(keys, key):
            m &= ident[c].astype(str).to_numpy() == v
        return m

    group_keys = sorted({tuple(map(str, k)) for k in
                         pd.concat([train_id[keys], test_id[keys]]).astype(str).itertuples(index=False)})
    for key in group_keys:
        mtr, mte = mask(train_id, key), mask(test_id, key)
        acc_tr, acc_te = np.zeros(int(mtr.sum())), np.zeros(int(mte.sum()))
        for j, name in enumerate(names):
            t = train_s[mtr, j]
            ref = t[np.isfinite(t)]
            entry: dict[str, Any] = {**dict(zip(keys, key)), "member": name, "n_train": int(len(ref)),
                                     "mean": float(ref.mean()) if len(ref) else None,
                                     "sd": float(ref.std()) if len(ref) else None, "left_out": False}
            if combine == "zsum":
                mu, sd = (float(ref.mean()), float(ref.std())) if len(ref) else (np.nan, np.nan)
                if len(ref) < 2 or not sd > 1e-12 * max(1.0, abs(mu)):
                    entry["left_out"] = True
                    log.warning("ensemble: member %s has %s training scores of %s; it contributes 0 there",
                                name, "zero-sd" if len(ref) >= 2 else f"{len(ref)} finite",
                                "/".join(key))
                    # z := 0, but a NaN score still makes the clip's ensemble score NaN
                    acc_tr += np.where(np.isnan(t), np.nan, 0.0)
                    acc_te += np.where(np.isnan(test_s[mte, j]), np.nan, 0.0)
                else:
                    acc_tr += w[j] * (t - mu) / sd
                    acc_te += w[j] * (test_s[mte, j] - mu) / sd
            else:
                if len(ref) == 0:
                    entry["left_out"] = True
                    log.warning("ensemble: member %s has no finite training score of %s", name, "/".join(key))
                    acc_tr += np.nan
                    acc_te += np.nan
                else:
                    acc_tr += w[j] * _mid_ecdf(ref, t) / w.sum()
                    acc_te += w[j] * _mid_ecdf(ref, test_s[mte, j]) / w.sum()
            groups.append(entry)
        train_out[mtr], test_out[mte] = acc_tr, acc_te
    n_nan = int(np.isnan(test_out).sum())
    if n_nan:
        log.warning("ensemble: %d test clips have no score (a member has none for them)", n_nan)
    report = {"combine": combine, "weights": [float(x) for x in w], "per_section": per_section,
              "members": names, "n_train": int(len(train_id)), "n_test": int(len(test_id)),
              "n_test_without_score": n_nan, "groups": groups}
    return EnsembleResult(train_id.assign(score=train_out), test_id.assign(score=test_out), report)
