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


# -- the report's SVG charts (lossearch.charts): the same bounds, and well-formed ----------------


def _svg_tree(svg: str):
    from xml.etree import ElementTree

    return ElementTree.fromstring(svg)  # raises on malformed markup


def test_the_reports_charts_stay_small_for_a_thousand_classes():
    from lossearch import charts

    names = [f"class{i}" for i in range(1000)]
    per_class = {c: {"recall": i / 1000} for i, c in enumerate(names)}
    matrix = charts.confusion_matrix(np.full((1000, 1000), 2).tolist(), names)
    recall = charts.per_class_recall(names, per_class, per_class)
    for svg in (matrix, recall):
        tree = _svg_tree(svg)
        assert int(tree.get("width")) <= 1000 and int(tree.get("height")) <= 1000
        assert "class5" not in svg  # index, not 1000 names
        assert len(svg) < 500_000
    assert "blocks of 20 classes" in matrix  # 1000 classes summed into a 50 x 50 grid
    assert ">2<" not in matrix  # no million counts written


def test_the_reports_charts_keep_names_counts_and_the_best_so_far():
    from lossearch import charts

    names = ["cat", "dog", "<eel>"]
    matrix = charts.confusion_matrix(np.arange(9).reshape(3, 3).tolist(), names)
    texts = [t.text for t in _svg_tree(matrix).iter("{http://www.w3.org/2000/svg}text")]
    assert [str(v) for v in range(9)] == [t for t in texts if t and t.isdigit()]
    assert {"cat", "dog", "<eel>"} <= set(texts)  # escaped in the markup, whole in the text
    history = charts.optimization_history([(0, 0.5), (1, 0.4), (2, 0.7)], "maximize", "bacc")
    line = _svg_tree(history).find("{http://www.w3.org/2000/svg}polyline").get("points")
    heights = [float(p.split(",")[1]) for p in line.split()]
    assert len(set(heights[:4])) == 1 and heights[4] < heights[3]  # flat at 0.5, then up to 0.7
    importances = charts.param_importances({"family": 0.7, "focal.gamma": 0.3})
    assert "focal.gamma" in importances and "0.70" in importances
    _svg_tree(importances)
