"""The documents a reader starts from stay short, and every link in them leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    ROOT / "BENCHMARKS.md",
    ROOT / "CONTRIBUTING.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "benchmarks" / "results").glob("*.md")),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to -."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize(("name", "limit"), [("README.md", 12_000), ("BENCHMARKS.md", 15_000)])
def test_summary_pages_stay_short(name, limit):
    assert len((ROOT / name).read_bytes()) <= limit, f"{name}: the detail belongs in docs/"


def test_readme_lists_at_most_eight_arguments():
    text = (ROOT / "README.md").read_text()
    table = text.split("## Main arguments", 1)[1].split("\n\n| argument")[1].split("\n\n")[0]
    assert len(table.splitlines()) - 2 <= 8  # the header and its separator, then the rows


def test_benchmarks_summary_links_each_section_detail():
    text = (ROOT / "BENCHMARKS.md").read_text()
    sections = re.findall(r"<!-- ([\w-]+):start -->", text)
    assert sections
    for name in sections:
        assert f"(benchmarks/results/{name}.md)" in text
        assert (ROOT / "benchmarks" / "results" / f"{name}.md").exists()
    assert "smoke" not in text.lower() and not re.search(r"#\d", text)  # no issue numbers


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} leads nowhere"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: no heading for {target}"
