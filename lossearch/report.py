"""A finished search as one self-contained HTML page, for people who share results by file.

The page holds the chosen loss config, the per-class metrics of the best trial against the
cross-entropy baseline, the optimisation history and the parameter importances. Its charts
are SVG drawn by :mod:`lossearch.charts` (no matplotlib: the page is written in well under a
second), embedded as ``data:`` URIs, and it has no script, so it opens anywhere, offline.
The PNG figures of :mod:`lossearch.plots` go to MLflow beside it.

The page renders a :class:`~lossearch.summary.SearchSummary`, so a live result
(``result.report("report.html")``) and a stored Optuna study (``lossearch report --storage
URL --study NAME``, which needs neither the data nor MLflow) give the same page.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from datetime import datetime, timezone
from typing import Any

from lossearch import charts
from lossearch._files import write_text
from lossearch.metrics.evaluation import PER_CLASS_KEYS
from lossearch.summary import SearchSummary


def search_figures(summary: SearchSummary) -> dict[str, Any]:
    """The search's plots as ``{artifact name: matplotlib figure}`` (MLflow's PNGs); close
    them with ``plots.close``."""
    from lossearch import plots  # matplotlib: only where PNGs are wanted

    return _drawn(summary, plots)


def report_charts(summary: SearchSummary) -> dict[str, str]:
    """The same plots as SVG for the page, keyed by the name of the PNG each stands for."""
    return _drawn(summary, charts)


def _drawn(summary: SearchSummary, draw) -> dict[str, Any]:
    """Each plot ``summary`` has data for, drawn by ``draw``: :mod:`lossearch.plots` or
    :mod:`lossearch.charts`, which name their functions alike."""
    drawn = {
        "plots/optimization_history.png": draw.optimization_history(
            summary.history, summary.direction, summary.objective
        )
    }
    if summary.importances:
        drawn["plots/param_importances.png"] = draw.param_importances(summary.importances)
    per_class = summary.metrics.get("per_class", {})
    if per_class:
        drawn["plots/per_class_recall.png"] = draw.per_class_recall(
            summary.class_names, per_class, summary.baseline_metrics.get("per_class")
        )
    if summary.metrics.get("confusion"):
        drawn["plots/confusion_matrix.png"] = draw.confusion_matrix(
            summary.metrics["confusion"], summary.class_names
        )
    return drawn


def parent_artifacts(summary: SearchSummary, trials_frame) -> dict[str, Any]:
    """The MLflow parent run's artifacts: ``best_loss.json``, ``trials.csv``,
    ``selection.json``, ``summary.txt``, ``report.html`` and the plots (figures: close
    them with ``plots.close``)."""
    figures = search_figures(summary)
    return {
        "best_loss.json": summary.best_config.to_dict(),
        "trials.csv": _csv(trials_frame),
        "selection.json": summary.selection.to_dict(),
        "summary.txt": summary.text(),
        "report.html": render_html(summary),
        **figures,
    }


def _csv(frame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return buffer.getvalue()


def render_html(summary: SearchSummary) -> str:
    """The report page, its charts inline."""
    images = report_charts(summary)
    s = summary.selection
    trial = s.chosen.number
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(summary.states.items()))
    std = f" ± {s.std:.4f}" if summary.confirmed else ""
    headline = [
        ("Objective", f"{summary.objective} ({summary.direction})"),
        ("Best loss", summary.best_config.describe()),
        (f"Best {summary.objective}", f"{s.value:.4f}{std} (trial {trial})"),
    ]
    if s.baseline_value is not None:
        runs = s.baseline_runs
        same = f" over {runs} runs (the same seeds and epochs as the pick)" if runs > 1 else ""
        headline.append((f"CE baseline {summary.objective}", f"{s.baseline_value:.4f}{same}"))
    if summary.against_ce():
        headline.append(("Pick vs CE", summary.against_ce()))
    if summary.on_test():
        headline.append(("Test set", summary.on_test()))
    headline += [("Why this pick", summary.why()), ("Selection", s.reason), ("Trials", states)]
    headline += [("Warning", note) for note in s.warnings]
    sections = [
        f"<h1>{_e(summary.title)}</h1>",
        f'<p class="muted">Written by lossearch, {_now()}.</p>',
        _table(["", ""], headline, cls="headline"),
        *(_metric_sections(summary, images, trial) if summary.class_names else [_no_metrics()]),
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
        f"<pre>{_e(json.dumps(summary.best_config.to_dict(), indent=2))}</pre>",
    ]
    body = "\n".join(s for s in sections if s)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(summary.title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _metric_sections(summary: SearchSummary, images: dict, trial: int) -> list[str]:
    return [
        "<h2>Summary metrics: pick vs CE baseline</h2>",
        (
            '<p class="muted">Validation metrics pooled over the confirmation runs of the pick '
            f"(trial {trial}) and of the CE baseline.</p>"
            if summary.confirmed
            else f'<p class="muted">Validation metrics of search trial {trial}.</p>'
        ),
        _summary_table(summary),
        "<h2>Per-class metrics: pick vs CE baseline</h2>",
        _per_class_table(summary),
        _figure(images, "plots/per_class_recall.png", "Per-class recall"),
    ]


def _no_metrics() -> str:
    return (
        '<p class="muted">The trials stored one value each (an objective of your own): no '
        "per-class metrics to show.</p>"
    )


def write_report(summary: SearchSummary, path: str | os.PathLike) -> str:
    """Render ``summary`` to ``path`` (folders must exist); returns the path."""
    return write_text(path, render_html(summary))


def _now() -> str:
    return f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[tuple], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _summary_table(summary: SearchSummary) -> str:
    rows = [(key, _cell(base), _cell(best)) for key, base, best in summary.summary_values()]
    return _table(["metric", "CE baseline", "pick"], rows)


def _per_class_table(summary: SearchSummary) -> str:
    best = summary.metrics.get("per_class", {})
    base = summary.baseline_metrics.get("per_class", {})
    counts = summary.class_counts
    header = ["class", "n_train", "n_val"] + [
        f"{key} ({who})" for key in PER_CLASS_KEYS for who in ("CE", "best")
    ]
    rows = []
    for i, name in enumerate(summary.class_names):
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
    svg = base64.b64encode(images[name].encode("utf-8")).decode("ascii")
    return (
        f'<figure><img src="data:image/svg+xml;base64,{svg}" alt="{_e(caption)}">'
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
