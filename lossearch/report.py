"""A finished search as one self-contained HTML page, for people who share results by file.

The page holds the chosen loss config, the per-class metrics of the best trial against the
cross-entropy baseline, the optimisation history and the parameter importances. Plots are
PNGs embedded as ``data:`` URIs and the page has no script, so it opens anywhere, offline.

Two sources give the same page: a :class:`~lossearch.SearchResult` in the process that ran
the search (``result.report("report.html")``), or a stored Optuna study
(``lossearch report --storage URL --study NAME``), which needs neither the data nor MLflow.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lossearch import plots
from lossearch.config import LossConfig

SUMMARY_KEYS = ("balanced_accuracy", "macro_f1", "minority_recall", "worst_class_recall", "pr_auc")
PER_CLASS_KEYS = ("recall", "precision", "f1", "ap")


@dataclass
class ReportContent:
    """Everything the report shows; built from a result or from a stored study."""

    title: str
    objective: str
    direction: str
    best_config: LossConfig
    best_trial: int
    best_value: float
    best_metrics: dict
    baseline_metrics: dict | None = None
    baseline_value: float | None = None
    best_value_std: float = 0.0
    selection_reason: str = ""
    baseline_runs: int = 1  # confirmation runs behind baseline_value (like the pick's)
    warnings: list[str] = field(default_factory=list)  # validation too small to judge, ...
    history: list[tuple[int, float]] = field(default_factory=list)  # completed trials
    states: dict[str, int] = field(default_factory=dict)
    importances: dict[str, float] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.best_metrics.get("per_class", {}))

    @classmethod
    def from_study(cls, storage: str, study_name: str) -> ReportContent:
        """The report of a study that lossearch wrote, read from its Optuna storage.

        Raises:
            ValueError: the storage or study cannot be opened, or holds no finished
                lossearch trial.
        """
        from lossearch.records import StoredStudy

        return cls.from_stored(StoredStudy.load(storage, study_name))

    @classmethod
    def from_stored(cls, stored) -> ReportContent:
        """The report of a :class:`~lossearch.records.StoredStudy`."""
        from lossearch.backends.optuna import importances_of

        chosen, baseline, choice = stored.chosen(), stored.baseline(), stored.choice
        if choice is None or choice.trial != chosen.number:  # the search has not closed yet
            choice = None
        return cls(
            title=f"lossearch: {stored.name}",
            objective=stored.objective,
            direction=stored.direction,
            best_config=stored.best_config(),
            best_trial=chosen.number,
            best_value=choice.value if choice else chosen.value,
            best_metrics=(choice and choice.metrics) or chosen.metrics or {},
            baseline_metrics=(choice and choice.baseline_metrics)
            or (baseline.metrics if baseline else None),
            baseline_value=choice.baseline_value
            if choice
            else (baseline.value if baseline else None),
            baseline_runs=choice.baseline_runs if choice else 1,
            warnings=choice.warnings if choice else [],
            selection_reason=choice.reason
            if choice
            else "the top trial so far (search not closed)",
            history=[(r.number, r.value) for r in stored.records()],
            states=stored.states(),
            importances=importances_of(stored.study),
        )


def search_figures(content: ReportContent) -> dict[str, Any]:
    """The search's plots as ``{artifact name: matplotlib figure}``; close with ``plots.close``."""
    figures = {
        "plots/optimization_history.png": plots.optimization_history(
            content.history, content.direction, content.objective
        )
    }
    if content.importances:
        figures["plots/param_importances.png"] = plots.param_importances(content.importances)
    per_class = content.best_metrics.get("per_class", {})
    if per_class:
        figures["plots/per_class_recall.png"] = plots.per_class_recall(
            content.class_names, per_class, (content.baseline_metrics or {}).get("per_class")
        )
    if content.best_metrics.get("confusion"):
        figures["plots/confusion_matrix.png"] = plots.confusion_matrix(
            content.best_metrics["confusion"], content.class_names
        )
    return figures


def render_html(content: ReportContent, figures: dict[str, Any]) -> str:
    """The report page, with ``figures`` embedded as PNG ``data:`` URIs."""
    images = {name: _png_data_uri(figure) for name, figure in figures.items()}
    states = ", ".join(
        f"{count} {state.lower()}" for state, count in sorted(content.states.items())
    )
    std = f" ± {content.best_value_std:.4f}" if content.best_value_std else ""
    headline = [
        ("Objective", f"{content.objective} ({content.direction})"),
        ("Best loss", content.best_config.describe()),
        (
            f"Best {content.objective}",
            f"{content.best_value:.4f}{std} (trial {content.best_trial})",
        ),
    ]
    if content.baseline_value is not None:
        runs = content.baseline_runs
        same = f" over {runs} runs (the same seeds and epochs as the pick)" if runs > 1 else ""
        headline.append((f"CE baseline {content.objective}", f"{content.baseline_value:.4f}{same}"))
    headline += [("Selection", content.selection_reason), ("Trials", states)]
    headline += [("Warning", note) for note in content.warnings]
    sections = [
        f"<h1>{_e(content.title)}</h1>",
        f'<p class="muted">Written by lossearch, {_now()}.</p>',
        _table(["", ""], headline, cls="headline"),
        "<h2>Summary metrics: best vs CE baseline</h2>",
        (
            '<p class="muted">Validation metrics pooled over the confirmation runs of the pick '
            f"(trial {content.best_trial}) and of the CE baseline.</p>"
            if std
            else f'<p class="muted">Validation metrics of search trial {content.best_trial}.</p>'
        ),
        _summary_table(content),
        "<h2>Per-class metrics: best vs CE baseline</h2>",
        _per_class_table(content),
        _figure(images, "plots/per_class_recall.png", "Per-class recall"),
        "<h2>Optimisation history</h2>",
        _figure(images, "plots/optimization_history.png", "Optimisation history"),
        "<h2>Parameter importances</h2>",
        _figure(images, "plots/param_importances.png", "Parameter importances")
        if "plots/param_importances.png" in images
        else '<p class="muted">Not available: too few completed trials with varying '
        "parameters.</p>",
        _figure(images, "plots/confusion_matrix.png", "Confusion matrix"),
        "<h2>Best loss config</h2>",
        '<p>Rebuild it with <code>lossearch.load_loss("best_loss.json")</code>:</p>',
        f"<pre>{_e(json.dumps(content.best_config.to_dict(), indent=2))}</pre>",
    ]
    body = "\n".join(s for s in sections if s)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(content.title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(content: ReportContent, path: str | os.PathLike) -> str:
    """Render ``content`` to ``path`` (folders must exist); returns the path."""
    figures = search_figures(content)
    try:
        page = render_html(content, figures)
    finally:
        plots.close(*figures.values())
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return os.fspath(path)


def _now() -> str:
    return f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"


def _png_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[tuple], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _summary_table(content: ReportContent) -> str:
    best = content.best_metrics.get("summary", {})
    base = (content.baseline_metrics or {}).get("summary", {})
    rows = [(key, _cell(base.get(key)), _cell(best.get(key))) for key in SUMMARY_KEYS]
    return _table(["metric", "CE baseline", "best"], rows)


def _per_class_table(content: ReportContent) -> str:
    best = content.best_metrics.get("per_class", {})
    base = (content.baseline_metrics or {}).get("per_class", {})
    counts = content.best_config.class_counts or ()
    header = ["class", "n_train", "n_val"] + [
        f"{key} ({who})" for key in PER_CLASS_KEYS for who in ("CE", "best")
    ]
    rows = []
    for i, name in enumerate(content.class_names):
        n_val = best.get(name, {}).get("support", "–")
        cells = [name, counts[i] if i < len(counts) else "–", n_val]
        for key in PER_CLASS_KEYS:
            cells += [
                _cell(base.get(name, {}).get(key)),
                _cell(best.get(name, {}).get(key)),
            ]
        rows.append(tuple(cells))
    return _table(header, rows, cls="per-class")


def _figure(images: dict[str, str], name: str, caption: str) -> str:
    if name not in images:
        return ""
    return (
        f'<figure><img src="{images[name]}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#1f2328}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
table.headline td{text-align:left}table.headline thead{display:none}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}
figcaption{color:#59636e;font-size:.9em}.muted{color:#59636e}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
"""
