"""AUC, pAUC and the official DCASE score; DCASE submission files and decision thresholds.

Three sets of rules (``evaluation.rules``, :data:`RULES`), one per generation of the official
DCASE Task 2 evaluators, see docs/formats.md §2.2:

``dcase2022+`` (``Kota-Dohi/dcase2022_evaluator``, ``nttcslab/dcase2023_task2_evaluator``,
``nttcslab/dcase2024_task2_evaluator``; 2025 assumed identical):

* ``AUC (domain d)`` of one machine × section uses the normal clips of domain ``d`` plus the
  anomalous clips of **both** domains (mask ``domain == d OR label == anomaly``).
* ``pAUC`` is ``sklearn.metrics.roc_auc_score(y, s, max_fpr=0.1)`` - the McClish-standardised
  partial AUC (chance 0.5, maximum 1.0) - over **all** clips of the section. There is one pAUC
  per section; :func:`auc_pauc_table` repeats that value in the source and the target row so the
  table stays one row per machine × section × domain.
* Official score = ``scipy.stats.hmean`` of ``[AUC(source) per machine×section] +
  [AUC(target) per machine×section] + [pAUC per machine×section]``, each value floored at
  ``sys.float_info.epsilon`` (:func:`official_score`).

``dcase2021`` (``y-kawagu/dcase2021_task2_evaluator``):

* ``AUC`` and ``pAUC`` per machine × section × domain over **that domain's clips only** (its
  normal and its anomalous clips).
* Official score = hmean (values floored at epsilon) of every such AUC and pAUC value (the
  evaluator's "harmonic mean over all machine types, sections, and domains").

``dcase2020`` (``y-kawagu/dcase2020_task2_evaluator``):

* ``AUC`` and ``pAUC`` per machine id (asdflow's section) over all its test clips; per machine
  type the evaluator prints the arithmetic mean over ids (its "Average" row,
  :func:`summary_scores` ``evaluator_rows``).
* The 2020 evaluator defines no overall score. **asdflow's choice**: hmean (floored at epsilon)
  of every machine-id AUC and pAUC value, mirroring 2021 and later.

In every rule set ``pauc_domain`` is the pAUC over that domain's clips only (normal and
anomalous of domain ``d``). The 2022+ evaluators do not use it; the DCASE baseline's own report
(``pAUC (source)``/``pAUC (target)``) and the reference code print it. ``auto`` picks the rules
from the test clips' file names (:func:`detect_rules`).

Undefined cases (only one class among the clips of a mask) give NaN plus a logged warning, as
recent scikit-learn does, instead of an exception.

Submission files (docs/formats.md §2.1): ``anomaly_score_<machine>_section_<XX>_test.csv`` and
``decision_result_<machine>_section_<XX>_test.csv``, no header, ``basename,value``, one row per
test file, rows sorted lexicographically by basename. Decisions are ``1`` if ``score >
threshold`` else ``0``, with one threshold per machine type for both domains (docs/formats.md §2.3).
"""

from __future__ import annotations

import csv
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.stats
from sklearn.metrics import roc_auc_score

__all__ = [
    "MAX_FPR",
    "RULES",
    "auc_pauc_table",
    "decision_threshold",
    "detect_rules",
    "official_score",
    "pauc_mcclish",
    "resolve_rules",
    "roc_points",
    "rules_of_name",
    "safe_roc_auc",
    "summary_scores",
    "write_submission",
]

log = logging.getLogger(__name__)

#: ``MAX_FPR`` of every official evaluator.
MAX_FPR = 0.1
#: Floor applied to every value before the harmonic mean (the evaluators' ``sys.float_info.epsilon``).
EPS = sys.float_info.epsilon

#: ``evaluation.rules`` values: the official evaluators' definitions per year (module docstring).
RULES = ("dcase2020", "dcase2021", "dcase2022+")
#: ``evaluation.rules: auto`` picks one of :data:`RULES` from the test clips' names.
AUTO = "auto"
#: Rules of tables built before rules existed, and of ``auto`` without any DCASE name.
DEFAULT_RULES = "dcase2022+"

_DOMAIN_ORDER = {"source": 0, "target": 1}
TABLE_COLUMNS = ["machine", "section", "domain", "auc", "pauc", "pauc_domain", "n_normal", "n_anomaly"]


# --------------------------------------------------------------------------------------------
# ROC helpers
# --------------------------------------------------------------------------------------------

def _binary(y_true: Iterable) -> np.ndarray:
    """0/1 labels from 0/1, bool, or ``normal``/``anomaly`` strings (anomaly = positive = 1)."""
    y = np.asarray(y_true)
    if y.dtype.kind in "OUS":
        bad = set(np.unique(y)) - {"normal", "anomaly"}
        if bad:
            raise ValueError(f"labels must be 'normal'/'anomaly', got {sorted(bad)}")
        return (y == "anomaly").astype(np.int64)
    return (y.astype(np.float64) != 0).astype(np.int64)


def safe_roc_auc(y_true, y_score, max_fpr: float | None = None, what: str = "") -> float:
    """``roc_auc_score`` (``max_fpr`` → McClish pAUC), NaN with a logged warning when undefined.

    Undefined means: no clips, or only one class among them.
    """
    y = _binary(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if len(y) == 0 or len(np.unique(y)) < 2:
        n_pos = int(y.sum())
        log.warning("%s: %s undefined (%d normal, %d anomalous clips) -> NaN",
                    what or "ROC", "pAUC" if max_fpr else "AUC", len(y) - n_pos, n_pos)
        return float("nan")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{what or 'ROC'}: non-finite anomaly scores")
    return float(roc_auc_score(y, s, max_fpr=max_fpr))


def roc_points(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve's corner points ``(fpr, tpr)``, from (0, 0) to (1, 1), computed by hand.

    Clips are visited by decreasing score; tied scores form one step (a diagonal segment when
    the tie mixes classes), as in ``sklearn.metrics.roc_curve`` (which additionally drops
    collinear points - that changes no area).
    """
    y = _binary(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC needs both classes")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # last index of each run of equal scores
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[ends]
    fp = (ends + 1) - tp
    fpr = np.r_[0.0, fp / n_neg]
    tpr = np.r_[0.0, tp / n_pos]
    return fpr, tpr


def pauc_mcclish(y_true, y_score, max_fpr: float = MAX_FPR) -> float:
    """McClish-standardised partial AUC over FPR ∈ [0, max_fpr], implemented by hand.

    Steps (the same as scikit-learn's ``_binary_roc_auc_score``):

    1. ROC corner points (:func:`roc_points`); the curve is piecewise linear between them.
    2. Raw area ``A`` = trapezoid integral of TPR over FPR ∈ [0, max_fpr]; the segment that
       crosses ``max_fpr`` is cut at a linearly interpolated point.
    3. McClish: ``0.5 * (1 + (A - p²/2) / (p - p²/2))`` with ``p = max_fpr``, so that a
       chance-level curve (A = p²/2) gives 0.5 and a perfect one (A = p) gives 1.

    NaN (with a warning) when only one class is present.
    """
    p = float(max_fpr)
    if not 0 < p <= 1:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr!r}")
    y = _binary(y_true)
    if len(y) == 0 or len(np.unique(y)) < 2:
        log.warning("pauc_mcclish: only one class present -> NaN")
        return float("nan")
    fpr, tpr = roc_points(y, y_score)
    area = 0.0
    for f0, t0, f1, t1 in zip(fpr[:-1], tpr[:-1], fpr[1:], tpr[1:]):
        if f0 >= p:
            break
        if f1 <= p:
            area += (f1 - f0) * (t0 + t1) / 2.0
        else:  # segment crosses p: cut it there (f1 > p > f0, so f1 - f0 > 0)
            t_at = t0 + (t1 - t0) * (p - f0) / (f1 - f0)
            area += (p - f0) * (t0 + t_at) / 2.0
    min_area, max_area = 0.5 * p * p, p
    return 0.5 * (1.0 + (area - min_area) / (max_area - min_area))


# --------------------------------------------------------------------------------------------
# Which year's rules
# --------------------------------------------------------------------------------------------

def _check_rules(rules: str) -> str:
    if rules not in RULES:
        raise ValueError(f"evaluation rules must be one of {list(RULES)} (or {AUTO!r} where names are "
                         f"available), got {rules!r}; see docs/formats.md §2.2")
    return rules


def rules_of_name(file_name: str) -> str | None:
    """The rules whose data layout a DCASE **test**-clip name belongs to; None for a non-DCASE name.

    File-name patterns of ``asdflow.io.dcase.PATTERNS`` (docs/formats.md §1.3):
    ``dcase2020`` / ``dcase2020_hidden`` (``normal_id_01_00000000``, ``id_05_00000000``) →
    ``dcase2020``; ``hidden_domain`` (2021 eval, ``section_03_source_test_0000``) and labelled test
    names **without** an attribute tail (2021 dev, ``section_00_source_test_anomaly_0099``) →
    ``dcase2021``; every other DCASE name (labelled names with a tail, ``hidden``
    ``section_00_0000``, ``supplemental``) → ``dcase2022+``. Meant for test clips: 2021 *train*
    names carry a tail.
    """
    from asdflow.io.dcase import UnknownFilenameError, parse_filename  # io.dcase does not import us

    try:
        parsed = parse_filename(str(file_name))
    except UnknownFilenameError:
        return None
    if parsed.pattern.startswith("dcase2020"):
        return "dcase2020"
    if parsed.pattern == "hidden_domain":
        return "dcase2021"
    if parsed.pattern in ("labelled", "labelled_nosplit") and not parsed.attr_tail:
        return "dcase2021"
    return "dcase2022+"


def detect_rules(test_file_names: Iterable[str]) -> str:
    """``evaluation.rules: auto``: the rules of the year the test clips' names come from.

    Every distinct name is classified by :func:`rules_of_name`; names that are not DCASE names
    are ignored. No DCASE name at all gives ``dcase2022+`` with a logged warning; names of more
    than one year are an error (set ``evaluation.rules`` explicitly then).
    """
    counts: Counter[str] = Counter()
    example: dict[str, str] = {}
    n_other = 0
    for name in pd.unique(pd.Series(list(test_file_names), dtype=object).astype(str)):
        rules = rules_of_name(name)
        if rules is None:
            n_other += 1
            continue
        counts[rules] += 1
        example.setdefault(rules, name)
    if not counts:
        log.warning("evaluation.rules auto: no DCASE test-clip name among %d names -> %s", n_other,
                    DEFAULT_RULES)
        return DEFAULT_RULES
    if len(counts) > 1:
        found = ", ".join(f"{r} ({counts[r]} names, e.g. {example[r]!r})" for r in RULES if r in counts)
        raise ValueError(f"evaluation.rules auto: the test clips' names belong to several years' layouts: "
                         f"{found}; set evaluation.rules to one of {list(RULES)} (docs/formats.md §2.2)")
    (rules,) = counts
    log.info("evaluation.rules auto -> %s (%d distinct test names, e.g. %r; %d not DCASE names)",
             rules, counts[rules], example[rules], n_other)
    return rules


def resolve_rules(rules: str, test_file_names: Iterable[str] | None = None) -> str:
    """``rules`` itself, or for ``auto`` :func:`detect_rules` of ``test_file_names``."""
    if rules == AUTO:
        return detect_rules(test_file_names if test_file_names is not None else [])
    return _check_rules(rules)


# --------------------------------------------------------------------------------------------
# Per machine × section × domain table
# --------------------------------------------------------------------------------------------

def _domain_key(d: str) -> tuple[int, str]:
    return (_DOMAIN_ORDER.get(d, 2), d)


def auc_pauc_table(scores: pd.DataFrame, max_fpr: float = MAX_FPR, rules: str = DEFAULT_RULES) -> pd.DataFrame:
    """AUC / pAUC per machine × section × domain under one year's official rules.

    ``scores`` columns: ``machine``, ``section``, ``domain`` (source/target), ``label``
    (normal/anomaly), ``score`` (higher = more anomalous); optional ``split`` (only ``test``
    rows are used when present) and ``dataset`` (then also a grouping key and an output column,
    first); ``file_name`` is needed only for ``rules="auto"``. Rows whose label is neither
    ``normal`` nor ``anomaly`` (e.g. hidden eval labels) are dropped with a warning.

    Output, one row per (dataset ×) machine × section × domain (domains found among that
    section's clips; source, target first); ``auc`` and ``pauc`` per ``rules``:

    * ``dcase2022+`` (default): ``auc`` = normals of this domain + anomalies of **all** domains
      of the section; ``pauc`` = McClish pAUC (``max_fpr``) over **all** clips of the section -
      one value per section, repeated in every domain row of that section.
    * ``dcase2021``: ``auc`` and ``pauc`` over this domain's clips only.
    * ``dcase2020``: ``auc`` and ``pauc`` over all clips of the section (machine id; 2020 data
      has one domain, so one row per section).
    * ``pauc_domain`` (every rule set): McClish pAUC over this domain's clips only (reference
      code / baseline; equals ``pauc`` under ``dcase2021``).
    * ``n_normal`` / ``n_anomaly``: the two class sizes behind ``auc`` - 2022+: normals of this
      domain / anomalies of the section; 2021: normals / anomalies of this domain; 2020:
      normals / anomalies of the section.

    The rules applied are recorded in ``table.attrs["rules"]`` (read by :func:`official_score`
    and :func:`summary_scores` when they are not given the rules). Single-class masks give NaN
    with a logged warning.
    """
    need = ["machine", "section", "domain", "label", "score"]
    missing = [c for c in need if c not in scores.columns]
    if missing:
        raise ValueError(f"scores table lacks columns {missing}")
    df = scores
    if "split" in df.columns:
        df = df[df["split"] == "test"]
    if rules == AUTO:
        rules = resolve_rules(rules, df["file_name"] if "file_name" in df.columns else None)
    _check_rules(rules)
    known = df["label"].isin(["normal", "anomaly"])
    if not known.all():
        log.warning("auc_pauc_table: dropping %d rows whose label is not normal/anomaly",
                    int((~known).sum()))
        df = df[known]
    keys = (["dataset"] if "dataset" in df.columns else []) + ["machine", "section"]
    out_cols = keys[:-2] + TABLE_COLUMNS
    rows = []
    for key, g in df.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        name = "/".join(map(str, key))
        y = (g["label"].to_numpy() == "anomaly").astype(np.int64)
        s = g["score"].to_numpy(dtype=np.float64)
        dom = g["domain"].astype(str).to_numpy()
        if rules == "dcase2022+":
            pauc = safe_roc_auc(y, s, max_fpr, what=f"{name} (all domains)")
            for d in sorted(set(dom), key=_domain_key):
                in_d = dom == d
                m = in_d | (y == 1)
                rows.append(dict(zip(keys, key)) | {
                    "domain": d,
                    "auc": safe_roc_auc(y[m], s[m], None, what=f"{name} {d}"),
                    "pauc": pauc,
                    "pauc_domain": safe_roc_auc(y[in_d], s[in_d], max_fpr, what=f"{name} {d} only"),
                    "n_normal": int(((y == 0) & in_d).sum()),
                    "n_anomaly": int(y.sum()),
                })
        elif rules == "dcase2021":
            for d in sorted(set(dom), key=_domain_key):
                in_d = dom == d
                pauc = safe_roc_auc(y[in_d], s[in_d], max_fpr, what=f"{name} {d} only")
                rows.append(dict(zip(keys, key)) | {
                    "domain": d,
                    "auc": safe_roc_auc(y[in_d], s[in_d], None, what=f"{name} {d} only"),
                    "pauc": pauc,
                    "pauc_domain": pauc,
                    "n_normal": int(((y == 0) & in_d).sum()),
                    "n_anomaly": int(((y == 1) & in_d).sum()),
                })
        else:  # dcase2020
            auc = safe_roc_auc(y, s, None, what=f"{name} (all clips)")
            pauc = safe_roc_auc(y, s, max_fpr, what=f"{name} (all clips)")
            domains = sorted(set(dom), key=_domain_key)
            for d in domains:
                in_d = dom == d
                rows.append(dict(zip(keys, key)) | {
                    "domain": d,
                    "auc": auc,
                    "pauc": pauc,
                    "pauc_domain": pauc if len(domains) == 1
                    else safe_roc_auc(y[in_d], s[in_d], max_fpr, what=f"{name} {d} only"),
                    "n_normal": int((y == 0).sum()),
                    "n_anomaly": int(y.sum()),
                })
    table = pd.DataFrame(rows, columns=out_cols)
    table = table.astype({"n_normal": "int64", "n_anomaly": "int64"})
    table.attrs["rules"] = rules
    return table


# --------------------------------------------------------------------------------------------
# Aggregates
# --------------------------------------------------------------------------------------------

def _section_keys(table: pd.DataFrame) -> list[str]:
    return (["dataset"] if "dataset" in table.columns else []) + ["machine", "section"]


def _table_rules(table: pd.DataFrame, rules: str | None) -> str:
    """The rules given, else those recorded by :func:`auc_pauc_table`, else ``dcase2022+``."""
    return _check_rules(rules if rules is not None else table.attrs.get("rules", DEFAULT_RULES))


def _official_parts(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(AUC source values, AUC target values, AUC of other domains, pAUC once per section)."""
    src = table.loc[table["domain"] == "source", "auc"].to_numpy(dtype=float)
    tgt = table.loc[table["domain"] == "target", "auc"].to_numpy(dtype=float)
    other = table.loc[~table["domain"].isin(["source", "target"]), "auc"].to_numpy(dtype=float)
    pauc = table.groupby(_section_keys(table), sort=True)["pauc"].first().to_numpy(dtype=float)
    return src, tgt, other, pauc


def _score_values(table: pd.DataFrame, rules: str) -> tuple[np.ndarray, np.ndarray]:
    """(AUC values, pAUC values) that enter the official score under ``rules``.

    2022+: AUC of every row (source, target, other domains), pAUC once per section. 2021: AUC
    and pAUC of every row (machine × section × domain). 2020: AUC and pAUC once per section
    (machine id; the table repeats them per domain row when there is more than one).
    """
    if rules == "dcase2022+":
        src, tgt, other, pauc = _official_parts(table)
        return np.concatenate([src, tgt, other]), pauc
    if rules == "dcase2021":
        return table["auc"].to_numpy(dtype=float), table["pauc"].to_numpy(dtype=float)
    per_section = table.groupby(_section_keys(table), sort=True)[["auc", "pauc"]].first()
    return per_section["auc"].to_numpy(dtype=float), per_section["pauc"].to_numpy(dtype=float)


def _hmean(values: Sequence[float] | np.ndarray, nan_policy: str = "propagate") -> float:
    """``scipy.stats.hmean`` of values floored at machine epsilon (NaN handled per policy)."""
    v = np.asarray(values, dtype=float)
    if nan_policy not in ("propagate", "omit"):
        raise ValueError(f"nan_policy must be 'propagate' or 'omit', got {nan_policy!r}")
    if np.isnan(v).any():
        if nan_policy == "propagate":
            return float("nan")
        log.warning("harmonic mean: omitting %d NaN values of %d", int(np.isnan(v).sum()), v.size)
        v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan")
    return float(scipy.stats.hmean(np.maximum(v, EPS)))


def _amean(values, nan_policy: str = "propagate") -> float:
    v = np.asarray(values, dtype=float)
    if nan_policy == "omit":
        v = v[~np.isnan(v)]
    return float(np.mean(v)) if v.size else float("nan")


def official_score(table: pd.DataFrame, nan_policy: str = "propagate", rules: str | None = None) -> float:
    """Official DCASE score of an :func:`auc_pauc_table` result under ``rules``.

    ``rules`` defaults to the table's ``attrs["rules"]``, else ``dcase2022+``; it must be the
    rules the table was built with.

    * ``dcase2022+``: ``hmean(max(eps, [AUC_source...] + [AUC_target...] + [pAUC per
      machine×section]))``: the pAUC enters **once per section** (the table repeats it per
      domain). Sections with a domain other than source/target contribute that AUC too.
    * ``dcase2021``: hmean of the AUC and the pAUC of every machine × section × domain row.
    * ``dcase2020`` (asdflow's choice; the 2020 evaluator defines no overall score): hmean of
      the AUC and the pAUC of every machine id (section).

    ``nan_policy="propagate"`` (default, as the evaluator) returns NaN if any value is NaN;
    ``"omit"`` drops NaN values with a warning. Compute one score per dataset (dev / eval):
    this function pools every row it is given.
    """
    rules = _table_rules(table, rules)
    if rules == "dcase2022+":
        src, tgt, other, pauc = _official_parts(table)
        return _hmean(np.concatenate([src, tgt, other, pauc]), nan_policy)
    aucs, paucs = _score_values(table, rules)
    return _hmean(np.concatenate([aucs, paucs]), nan_policy)


def _evaluator_rows(table: pd.DataFrame, rules: str, nan_policy: str) -> dict:
    """Per machine type, the summary rows the 2020 / 2021 evaluator prints below its AUC/pAUC rows."""
    out = {}
    for m, g in table.groupby("machine", sort=True):
        aucs, paucs = _score_values(g, rules)
        if rules == "dcase2020":  # "Average": numpy.mean over the machine's ids
            out[str(m)] = {"Average": {"auc": _amean(aucs, nan_policy), "pauc": _amean(paucs, nan_policy)}}
        else:  # 2021: over the machine's sections × domains, hmean with the epsilon floor
            out[str(m)] = {"arithmetic mean": {"auc": _amean(aucs, nan_policy), "pauc": _amean(paucs, nan_policy)},
                           "harmonic mean": {"auc": _hmean(aucs, nan_policy), "pauc": _hmean(paucs, nan_policy)}}
    return out


def summary_scores(table: pd.DataFrame, nan_policy: str = "propagate", rules: str | None = None) -> dict:
    """Official score and the evaluator's summary rows for an :func:`auc_pauc_table` result.

    Keys: ``rules`` (the rules applied; ``rules`` argument, else the table's ``attrs``, else
    ``dcase2022+``); ``official_score`` (:func:`official_score`); ``auc_hmean`` / ``auc_amean``
    (over the AUC values of the official score); ``pauc_hmean`` / ``pauc_amean`` (over its pAUC
    values: one per section for 2022+ and 2020, one per section × domain for 2021);
    ``auc_source_hmean``, ``auc_target_hmean``, ``auc_source_amean``, ``auc_target_amean`` (AUC of
    the source / target rows; 2020 has only source rows, its target values are NaN);
    ``pauc_domain_source_hmean`` / ``pauc_domain_target_hmean`` (per-domain pAUC, baseline
    style); ``per_machine``: ``{machine: official score of that machine's rows}`` (the reference
    code's per-machine "official score"); ``n_sections``. Under ``dcase2020`` and ``dcase2021``
    also ``evaluator_rows``: ``{machine: {row: {"auc", "pauc"}}}``, the evaluator's per-machine
    rows - 2020 ``Average`` (arithmetic mean over ids), 2021 ``arithmetic mean`` and ``harmonic
    mean`` (over sections × domains). Harmonic means floor values at machine epsilon, as the
    evaluator does.
    """
    rules = _table_rules(table, rules)
    src = table.loc[table["domain"] == "source", "auc"].to_numpy(dtype=float)
    tgt = table.loc[table["domain"] == "target", "auc"].to_numpy(dtype=float)
    aucs, pauc = _score_values(table, rules)
    pd_src = table.loc[table["domain"] == "source", "pauc_domain"].to_numpy(dtype=float) \
        if "pauc_domain" in table.columns else np.array([])
    pd_tgt = table.loc[table["domain"] == "target", "pauc_domain"].to_numpy(dtype=float) \
        if "pauc_domain" in table.columns else np.array([])
    per_machine = {str(m): official_score(g, nan_policy, rules) for m, g in table.groupby("machine", sort=True)}
    out = {
        "official_score": official_score(table, nan_policy, rules),
        "auc_hmean": _hmean(aucs, nan_policy),
        "auc_amean": _amean(aucs, nan_policy),
        "pauc_hmean": _hmean(pauc, nan_policy),
        "pauc_amean": _amean(pauc, nan_policy),
        "auc_source_hmean": _hmean(src, nan_policy),
        "auc_target_hmean": _hmean(tgt, nan_policy),
        "auc_source_amean": _amean(src, nan_policy),
        "auc_target_amean": _amean(tgt, nan_policy),
        "pauc_domain_source_hmean": _hmean(pd_src, nan_policy),
        "pauc_domain_target_hmean": _hmean(pd_tgt, nan_policy),
        "per_machine": per_machine,
        "n_sections": int(table.groupby(_section_keys(table)).ngroups),
        "rules": rules,
    }
    if rules != "dcase2022+":
        out["evaluator_rows"] = _evaluator_rows(table, rules, nan_policy)
    return out

# --------------------------------------------------------------------------------------------
# Decision threshold and submission files
# --------------------------------------------------------------------------------------------

def decision_threshold(train_scores, method: str = "gamma", q: float = 0.9) -> float:
    """One decision threshold from anomaly scores of **normal training** clips.

    * ``"gamma"`` (DCASE baseline, ``networks/base_model.py``): ``scipy.stats.gamma.fit`` (shape,
      loc, scale, all free) on the scores, threshold = ``gamma.ppf(q)``. Our scores
      (−max cosine) lie in [−1, 1] and may be ≤ 0, while the baseline's MSE scores are positive,
      so the scores are first **shifted** to be positive: ``shift = 1 − min(scores)`` when
      ``min(scores) ≤ 0`` (smallest shifted value = 1), else 0; the fit and ``ppf`` run on
      ``scores + shift`` and the threshold is returned as ``ppf − shift`` (in the original
      units). With a free ``loc`` the shift barely changes the fitted distribution; it keeps the
      optimiser in the positive range the baseline was written for. If the fit fails or gives a
      non-finite value, the percentile threshold is used instead (logged).
    * ``"percentile"``: ``np.quantile(scores, q)``.

    Per the task rules (2022+), compute one threshold per machine type covering both domains.
    """
    s = np.asarray(train_scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("decision_threshold: no finite training scores")
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    if method == "percentile":
        return float(np.quantile(s, q))
    if method != "gamma":
        raise ValueError(f"method must be 'gamma' or 'percentile', got {method!r}")
    if s.size < 3 or np.ptp(s) == 0:
        log.warning("decision_threshold: %d scores / zero spread, gamma fit impossible -> percentile",
                    s.size)
        return float(np.quantile(s, q))
    shift = 1.0 - s.min() if s.min() <= 0 else 0.0
    try:
        with np.errstate(all="ignore"):
            shape, loc, scale = scipy.stats.gamma.fit(s + shift)
            thr = float(scipy.stats.gamma.ppf(q, shape, loc=loc, scale=scale)) - shift
    except Exception as exc:  # scipy raises a variety of fit errors on degenerate data
        log.warning("decision_threshold: gamma fit failed (%s) -> percentile", exc)
        return float(np.quantile(s, q))
    if not np.isfinite(thr):
        log.warning("decision_threshold: gamma fit gave a non-finite threshold -> percentile")
        return float(np.quantile(s, q))
    return thr


SCORE_TEMPLATE = "anomaly_score_{machine}_section_{section}_test.csv"
DECISION_TEMPLATE = "decision_result_{machine}_section_{section}_test.csv"


def write_submission(
    scores_df: pd.DataFrame,
    out_dir: str | Path,
    threshold_per_machine: Mapping[str, float],
    *,
    score_template: str = SCORE_TEMPLATE,
    decision_template: str = DECISION_TEMPLATE,
) -> list[Path]:
    """Write the DCASE 2022-2025 submission files of every machine × section in ``scores_df``.

    ``scores_df`` needs ``machine``, ``section`` (two-digit string), ``file_name`` (basename of
    the test wav) and ``score``; rows with ``split != "test"`` are ignored when a ``split``
    column exists. For each machine × section two files are written: the anomaly scores and the
    decisions (``1`` if ``score > threshold_per_machine[machine]`` else ``0``). No header,
    ``basename,value`` per row, ``\\n`` line ends, rows in lexicographic order of the basename.
    A basename appearing twice in one section is an error (the evaluator pairs rows by
    position). Returns the written paths (score file, decision file, per section, sorted).
    """
    need = ["machine", "section", "file_name", "score"]
    missing = [c for c in need if c not in scores_df.columns]
    if missing:
        raise ValueError(f"scores table lacks columns {missing}")
    df = scores_df
    if "split" in df.columns:
        df = df[df["split"] == "test"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for (machine, section), g in df.groupby(["machine", "section"], sort=True):
        machine, section = str(machine), str(section)
        if machine not in threshold_per_machine:
            raise KeyError(f"no decision threshold for machine type {machine!r}")
        thr = float(threshold_per_machine[machine])
        names = g["file_name"].astype(str).to_numpy()
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique()
        if len(dup):
            raise ValueError(f"{machine} section {section}: duplicate file names {list(dup[:5])}")
        if any("/" in n or "\\" in n for n in names):
            raise ValueError(f"{machine} section {section}: file_name must be a basename")
        score = g["score"].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(score)):
            raise ValueError(f"{machine} section {section}: non-finite scores")
        order = np.argsort(names, kind="mergesort")  # lexicographic (code-point) order
        fmt = {"machine": machine, "section": section}
        score_path = out_dir / score_template.format(**fmt)
        decision_path = out_dir / decision_template.format(**fmt)
        with open(score_path, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerows((names[i], repr(float(score[i]))) for i in order)
        with open(decision_path, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerows((names[i], int(score[i] > thr)) for i in order)
        written += [score_path, decision_path]
    return written
