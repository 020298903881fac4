"""The HTML report's charts as inline SVG, written as text.

The report draws its own charts rather than embedding matplotlib's PNGs: matplotlib takes a
second to import and draw, and ``lossearch report`` answers from a stored study within one.
The PNG figures logged to MLflow stay in :mod:`lossearch.plots`. Every chart is bounded in
size whatever the class count, as the figures are.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

WIDTH = 640
# matplotlib's first colours, so that the report and the MLflow figures read alike
BLUE, ORANGE, RED = "#1f77b4", "#ff7f0e", "#d62728"
LABELLED_CLASSES = 50  # tick labels per class up to this many (as plots.py)
ANNOTATED_CLASSES = 25  # confusion counts written in the cells up to this many
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 16, 30, 44  # plot margins, pixels


def _e(value) -> str:
    return html.escape(str(value))


def _svg(height: int, title: str, body: list[str], width: int = WIDTH) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
        f"<title>{_e(title)}</title>"
        f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" font-size="13">{_e(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _scale(low: float, high: float, start: float, end: float):
    """A linear map from ``[low, high]`` to pixels ``[start, end]``."""
    span = (high - low) or 1.0
    return lambda value: start + (value - low) / span * (end - start)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]``."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if raw <= m * step)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _y_axis(ticks: list[float], y, left: int, right: int) -> list[str]:
    return [
        f'<line x1="{left}" x2="{right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#ddd"/>'
        f'<text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>'
        for t in ticks
    ]


def _axis_labels(x_label: str, y_label: str, height: int, width: int = WIDTH) -> list[str]:
    return [
        f'<text x="{(_LEFT + width - _RIGHT) / 2:.0f}" y="{height - 6}" '
        f'text-anchor="middle">{_e(x_label)}</text>',
        f'<text transform="translate(14 {(height - _BOTTOM + _TOP) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{_e(y_label)}</text>',
    ]


def _legend(entries: list[tuple[str, str]], x: float, y: float = 30) -> list[str]:
    out = []
    for i, (label, colour) in enumerate(entries):
        top = y + 14 * i
        out.append(
            f'<rect x="{x:.0f}" y="{top:.0f}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.0f}" y="{top + 9:.0f}">{_e(label)}</text>'
        )
    return out


def optimization_history(values: Sequence[tuple[int, float]], direction: str, name: str) -> str:
    """Each completed trial's objective, and the best so far as a step line."""
    height = 300
    body = _axis_labels("trial", name, height)
    if values:
        numbers, scores = [v[0] for v in values], [v[1] for v in values]
        low, high = min(scores), max(scores)
        pad = (high - low) * 0.05 or 0.05
        x = _scale(min(numbers) - 0.5, max(numbers) + 0.5, _LEFT, WIDTH - _RIGHT)
        y = _scale(low - pad, high + pad, height - _BOTTOM, _TOP)
        body += _y_axis(_ticks(low - pad, high + pad), y, _LEFT, WIDTH - _RIGHT)
        body += [
            f'<text x="{x(t):.1f}" y="{height - _BOTTOM + 14}" text-anchor="middle">{t:g}</text>'
            for t in _ticks(min(numbers), max(numbers), 8)
            if float(t).is_integer()
        ]
        body += [
            f'<circle cx="{x(n):.1f}" cy="{y(s):.1f}" r="3" fill="{BLUE}" fill-opacity="0.6"/>'
            for n, s in values
        ]
        better = max if direction == "maximize" else min
        best, steps = None, []  # the best so far, drawn "post": flat until it improves
        for n, score in values:
            best = score if best is None else better(best, score)
            if steps:
                steps.append((x(n), steps[-1][1]))
            steps.append((x(n), y(best)))
        line = " ".join(f"{px:.1f},{py:.1f}" for px, py in steps)
        body.append(f'<polyline points="{line}" fill="none" stroke="{RED}"/>')
        body += _legend([("trial", BLUE), ("best so far", RED)], WIDTH - 120)
    return _svg(height, "Optimisation history", body)


def param_importances(importances: dict[str, float]) -> str:
    """One horizontal bar per parameter, the most important on top."""
    row, left = 18, 180
    height = _TOP + row * len(importances) + _BOTTOM
    top = max(importances.values(), default=1.0) or 1.0
    x = _scale(0.0, top, left, WIDTH - _RIGHT - 40)  # room for the value after the bar
    body = [
        f'<text x="{(left + WIDTH) / 2:.0f}" y="{height - 6}" text-anchor="middle">'
        "importance (fANOVA)</text>"
    ]
    for i, (name, value) in enumerate(importances.items()):
        y = _TOP + i * row
        body.append(
            f'<rect x="{left}" y="{y + 2}" width="{x(value) - left:.1f}" height="{row - 4}" '
            f'fill="{BLUE}"/><text x="{left - 4}" y="{y + row - 5}" text-anchor="end">'
            f"{_e(name)}</text>"
            f'<text x="{x(value) + 3:.1f}" y="{y + row - 5}">{value:.2f}</text>'
        )
    return _svg(height, "Parameter importances", body)


def per_class_recall(class_names: Sequence[str], best: dict, baseline: dict | None) -> str:
    """Recall per class of the pick beside the CE baseline's, as grouped bars."""
    height, n = 300, len(class_names)
    x = _scale(0, n, _LEFT, WIDTH - _RIGHT)
    y = _scale(0.0, 1.05, height - _BOTTOM, _TOP)
    width = (x(1) - x(0)) * 0.4
    body = _y_axis(_ticks(0.0, 1.0), y, _LEFT, WIDTH - _RIGHT)
    series = [(best, "pick", ORANGE)]
    if baseline is not None:
        series.insert(0, (baseline, "CE baseline", BLUE))
    for i, name in enumerate(class_names):
        for k, (values, _, colour) in enumerate(series):
            recall = values.get(name, {}).get("recall") or 0.0
            shift = (k - len(series) / 2) * width
            body.append(
                f'<rect x="{x(i + 0.5) + shift:.1f}" y="{y(recall):.1f}" width="{width:.1f}" '
                f'height="{y(0) - y(recall):.1f}" fill="{colour}"/>'
            )
        if n <= LABELLED_CLASSES:
            body.append(
                f'<text x="{x(i + 0.5):.1f}" y="{height - _BOTTOM + 14}" '
                f'text-anchor="middle">{_e(name)}</text>'
            )
    label = "class" if n <= LABELLED_CLASSES else f"class (index, {n} classes)"
    body += _axis_labels(label, "recall", height)
    body += _legend([(s[1], s[2]) for s in series], WIDTH - 120)
    return _svg(height, "Per-class recall: pick vs CE baseline", body)


def _blocks(matrix: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    """``matrix`` summed over square blocks of ``size`` classes: a 1000-class matrix would be a
    million cells of SVG."""
    n = len(matrix)
    cells = math.ceil(n / size)
    out = [[0] * cells for _ in range(cells)]
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            out[i // size][j // size] += int(count)
    return out


def confusion_matrix(matrix: Sequence[Sequence[int]], class_names: Sequence[str]) -> str:
    """Counts of true (rows) against predicted (columns) classes, darker for more; past
    ``LABELLED_CLASSES`` classes, summed over blocks of classes."""
    n = len(class_names)
    block = math.ceil(n / LABELLED_CLASSES)
    shown = _blocks(matrix, block) if block > 1 else [[int(c) for c in r] for r in matrix]
    cells = len(shown)
    cell = max(4.0, min(28.0, 420 / max(cells, 1)))
    left = 90 if block == 1 else 40
    height = int(_TOP + cell * cells + 50)
    most = max((max(r) for r in shown), default=0) or 1
    body = []
    for i, counts in enumerate(shown):
        for j, count in enumerate(counts):
            shade = count / most
            colour = (
                f"rgb({int(247 - 239 * shade)},{int(251 - 203 * shade)},{int(255 - 148 * shade)})"
            )
            body.append(
                f'<rect x="{left + j * cell:.1f}" y="{_TOP + i * cell:.1f}" width="{cell:.1f}" '
                f'height="{cell:.1f}" fill="{colour}"/>'
            )
            if n <= ANNOTATED_CLASSES:
                ink = "white" if shade > 0.5 else "black"
                cx, cy = left + (j + 0.5) * cell, _TOP + (i + 0.5) * cell + 4
                body.append(
                    f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle" font-size="9" '
                    f'fill="{ink}">{count}</text>'
                )
        if block == 1:
            body.append(
                f'<text x="{left - 4}" y="{_TOP + (i + 0.5) * cell + 4:.1f}" '
                f'text-anchor="end">{_e(class_names[i])}</text>'
            )
    unit = "" if block == 1 else f" (blocks of {block} classes by index)"
    body += [
        f'<text x="{left + cell * cells / 2:.0f}" y="{height - 10}" text-anchor="middle">'
        f"predicted{unit}</text>",
        f'<text transform="translate(12 {_TOP + cell * cells / 2:.0f}) rotate(-90)" '
        'text-anchor="middle">true</text>',
    ]
    width = max(int(left + cell * cells + 20), 300)
    return _svg(height, "Confusion matrix of the pick", body, width=width)
