"""Matplotlib figures of a finished search (logged to MLflow, embedded in reports)."""

from __future__ import annotations

import numpy as np

# Figures made without pyplot: headless by construction, never registered with a GUI, and
# half a second less to import (`lossearch report` answers without it).
from matplotlib.figure import Figure


def _subplots(figsize):
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def optimization_history(values: list[tuple[int, float]], direction: str, name: str):
    """Objective of each completed trial and the best so far."""
    fig, ax = _subplots((7, 4))
    if values:
        numbers, scores = zip(*values, strict=True)
        best = (
            np.maximum.accumulate(scores)
            if direction == "maximize"
            else np.minimum.accumulate(scores)
        )
        ax.plot(numbers, scores, "o", alpha=0.6, label="trial")
        ax.step(numbers, best, where="post", color="C3", label="best so far")
        ax.legend()
    ax.set_xlabel("trial")
    ax.set_ylabel(name)
    ax.set_title("Optimisation history")
    fig.tight_layout()
    return fig


def param_importances(importances: dict[str, float]):
    fig, ax = _subplots((7, max(2.5, 0.4 * len(importances) + 1)))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color="C0")
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title("Parameter importances")
    fig.tight_layout()
    return fig


# Past these class counts a figure stops growing and drops what would crowd it (a 1000-class
# confusion matrix would otherwise be 50,000 pixels wide with a million cell labels).
MAX_INCHES = 16
LABELLED_CLASSES = 50  # tick labels per class up to this many
ANNOTATED_CLASSES = 25  # confusion counts written in the cells up to this many


def _inches(per_class: float, n_classes: int, least: float) -> float:
    return min(MAX_INCHES, max(least, per_class * n_classes + 2))


def per_class_recall(class_names, best: dict, baseline: dict | None):
    """Recall per class of the best config beside the CE baseline."""
    fig, ax = _subplots((_inches(0.6, len(class_names), 6), 4))
    x = np.arange(len(class_names))
    width = 0.4
    if baseline is not None:
        ax.bar(
            x - width / 2, [baseline[c]["recall"] for c in class_names], width, label="CE baseline"
        )
    ax.bar(x + width / 2, [best[c]["recall"] for c in class_names], width, label="best")
    if len(class_names) <= LABELLED_CLASSES:
        ax.set_xticks(x, class_names, rotation=45 if len(class_names) > 8 else 0)
    else:
        ax.set_xlabel(f"class (index, {len(class_names)} classes)")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall")
    ax.set_title("Per-class recall: best vs CE baseline")
    ax.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(matrix, class_names):
    matrix, n = np.asarray(matrix), len(class_names)
    fig, ax = _subplots((_inches(0.5, n, 4),) * 2)
    ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    if n <= LABELLED_CLASSES:
        ax.set_xticks(range(n), class_names, rotation=90)
        ax.set_yticks(range(n), class_names)
    if n <= ANNOTATED_CLASSES:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix of the best config")
    fig.tight_layout()
    return fig


def close(*figures):
    """Free the figures' drawing state (they hold no window: nothing else to close)."""
    for figure in figures:
        if figure is not None:
            figure.clear()


def is_figure(value) -> bool:
    return isinstance(value, Figure)
