"""The finishing step's figures scale with the number of classes: a 1000-class search gets
figures of bounded size without a label per cell, a small one keeps every label."""

import io

import numpy as np

from lossearch import plots


def _png_bytes(figure) -> int:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.tell()


def test_a_thousand_classes_give_bounded_figures_without_cell_labels():
    names = [f"class{i}" for i in range(1000)]
    per_class = {c: {"recall": i / 1000} for i, c in enumerate(names)}
    matrix = plots.confusion_matrix(np.full((1000, 1000), 2), names)
    recall = plots.per_class_recall(names, per_class, per_class)
    try:
        for figure in (matrix, recall):
            assert max(figure.get_size_inches()) <= plots.MAX_INCHES
            assert not figure.axes[0].texts  # no million "2"s
            ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
            assert not [t for t in ticks if t.startswith("class")]  # index ticks, not 1000 names
            assert _png_bytes(figure) < 5_000_000
    finally:
        plots.close(matrix, recall)


def test_a_few_classes_keep_their_names_and_counts():
    names = ["cat", "dog", "eel"]
    matrix = plots.confusion_matrix(np.arange(9).reshape(3, 3), names)
    try:
        ax = matrix.axes[0]
        assert [t.get_text() for t in ax.texts] == [str(v) for v in range(9)]
        assert [t.get_text() for t in ax.get_xticklabels()] == names
    finally:
        plots.close(matrix)
