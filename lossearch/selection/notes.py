"""Can the validation split judge? Warnings, with what to do, when it cannot."""

from __future__ import annotations

import numpy as np

from lossearch.data import MIN_VALIDATION_SUPPORT


def validation_support(data) -> list[int]:
    """Validation samples per class (multi-label: positives per label); out-of-fold with cv."""
    y = data.validation_targets
    if data.task == "multiclass":
        return np.bincount(y, minlength=data.num_classes).tolist()
    y = y.reshape(len(y), -1)
    return (
        y.sum(0).astype(int).tolist()
        if data.task == "multilabel"
        else [int((y == 0).sum()), int(y.sum())]
    )


def validation_warnings(data, records, objective) -> list[str]:
    """Why the validation scores may not tell the configs apart, with what to do about it."""
    notes = []
    support = validation_support(data)
    names = [
        name
        for name, n in zip(data.class_names, support, strict=True)
        if n < MIN_VALIDATION_SUPPORT
    ]
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        advice = (
            "pass cv=5 (--cv 5; out-of-fold scoring uses every sample)"
            if not data.cv
            else "add labelled data"
        )
        notes.append(
            f"validation too small to judge: {len(names)} class(es) have fewer than "
            f"{MIN_VALIDATION_SUPPORT} validation samples ({shown}); scores differ by noise, so "
            f"{advice}."
        )
    values = np.array([r.value for r in records], dtype=float)
    if len(values) >= 4:
        best = values.max() if objective.direction == "maximize" else values.min()
        tied = int(np.sum(np.isclose(values, best)))
        if tied > len(values) / 2:
            notes.append(
                f"validation too small to judge: {tied} of {len(values)} trials tie at the best "
                f"{objective.name} ({best:.4g}); "
                + (
                    "pass cv=5 (--cv 5) to score on every sample."
                    if not data.cv
                    else "add labelled data."
                )
            )
    return notes
