"""Figures of the Snakemake report (``snakemake --report``): AUC by stage, ROC curves, 2-D
embedding maps. Each function takes workflow artifacts (DataFrames) and writes one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plot_auc_by_stage", "plot_embeddings_2d", "plot_roc", "pca_2d"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    _pyplot().close(fig)
    return path


def plot_auc_by_stage(long: pd.DataFrame, path: str | Path) -> Path:
    """One panel per split × machine type: AUC (%, mean over seeds) against the stage, one line
    per system × domain (systems with one stage are single points)."""
    plt = _pyplot()
    per = long[long["machine"] != "ALL"]
    keys = sorted(per.groupby(["split", "machine"]).groups) or [("", "")]
    n = len(keys)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    systems = list(dict.fromkeys(per["system"]))
    colors = plt.get_cmap("tab10")
    max_stage = int(per["stage"].max()) if len(per) else 1
    for ax, (split, machine) in zip(axes.flat, keys):
        g = per[(per["split"] == split) & (per["machine"] == machine)]
        mean = g.groupby(["system", "domain", "stage"])["auc"].mean() * 100
        for (system, domain), s in mean.groupby(level=[0, 1]):
            stages = s.index.get_level_values("stage")
            ax.plot(stages, s.to_numpy(), marker="o" if domain == "source" else "s",
                    color=colors(systems.index(system) % 10),
                    linestyle="-" if domain == "source" else "--", label=f"{system} ({domain})")
        ax.set_xticks(range(1, max_stage + 1))
        ax.set_xlim(0.7, max_stage + 0.3)
        ax.set_title(f"{machine} ({split})")
        ax.set_xlabel("stage")
        ax.set_ylabel("AUC (%)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.tight_layout()
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), fontsize="small",
                   bbox_to_anchor=(0.5, 0.0))
    return _save(fig, path)


def plot_roc(test_scores: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """ROC curves per machine type (normal vs anomalous test clips): one curve per domain, with
    the AUC in the legend, as the DCASE evaluator defines it (normals of that domain, anomalies
    of both domains)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    known = test_scores[test_scores["label"].isin(["normal", "anomaly"]) & test_scores["score"].notna()]
    machines = sorted(known["machine"].unique()) or [""]
    cols = min(3, len(machines))
    rows = int(np.ceil(len(machines) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, machine in zip(axes.flat, machines):
        g = known[known["machine"] == machine]
        anomalies = g[g["label"] == "anomaly"]
        for domain in ("source", "target"):
            normals = g[(g["label"] == "normal") & (g["domain"] == domain)]
            if normals.empty or anomalies.empty:
                continue
            y = np.r_[np.zeros(len(normals)), np.ones(len(anomalies))]
            s = np.r_[normals["score"].to_numpy(), anomalies["score"].to_numpy()]
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, label=f"{domain} AUC {100 * roc_auc_score(y, s):.1f}")
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
        ax.axvline(0.1, color="grey", linewidth=0.6, linestyle="--")  # pAUC range, max_fpr = 0.1
        ax.set_title(machine)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize="small", loc="lower right")
    for ax in list(axes.flat)[len(machines):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Project rows of ``x`` (L2-normalised first) on their first two principal components."""
    x = np.asarray(x, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def plot_embeddings_2d(train: pd.DataFrame, test: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """2-D PCA map of a stage's embeddings: colour = machine type; dots = training clips,
    circles = normal test clips, crosses = anomalous test clips."""
    from asdflow.scoring import stack_embeddings

    plt = _pyplot()
    both = pd.concat([train.assign(kind="train"), test.assign(kind=np.where(test["label"] == "anomaly",
                                                                              "test anomaly", "test normal"))],
                     ignore_index=True)
    xy = pca_2d(stack_embeddings(both))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    colors = plt.get_cmap("tab10")
    style = {"train": dict(marker=".", s=10, alpha=0.5), "test normal": dict(marker="o", s=18, alpha=0.8),
             "test anomaly": dict(marker="x", s=22, alpha=0.9)}
    for i, machine in enumerate(sorted(both["machine"].unique())):
        for kind, kw in style.items():
            m = ((both["machine"] == machine) & (both["kind"] == kind)).to_numpy()
            if not m.any():
                continue
            color = colors(i % 10)
            paint = dict(facecolors="none", edgecolors=[color]) if kind == "test normal" else dict(color=[color])
            ax.scatter(xy[m, 0], xy[m, 1], label=f"{machine} {kind}", **paint, **kw)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize="x-small", ncol=2, loc="best")
    if title:
        ax.set_title(title)
    return _save(fig, path)
