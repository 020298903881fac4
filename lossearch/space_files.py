"""The bundled search space files, and reading any space file safely.

Standard library and PyYAML only, so that ``lossearch spaces`` lists the bundled spaces
without loading Keras or TensorFlow; :mod:`lossearch.search_space` parses what these read.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lossearch._validation import shown


class SpaceError(ValueError):
    """A malformed search space: names the file, the key and the reason."""


def _spaces_dir() -> Path:
    packaged = resources.files("lossearch") / "search_spaces"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "search_spaces"  # source checkout


def bundled_path(name: str) -> Path | None:
    path = _spaces_dir() / f"{name}.yaml"
    return path if path.is_file() else None


def bundled_spaces() -> list[str]:
    """Names of the spaces shipped with lossearch."""
    return sorted(p.stem for p in _spaces_dir().glob("*.yaml"))


def bundled_description(name: str) -> str:
    """The ``description`` a bundled space file gives itself (``default`` included, which
    :meth:`SearchSpace.load` resolves to another space)."""
    path = bundled_path(name)
    if path is None:
        raise ValueError(f"space: unknown space {shown(name)}; bundled spaces: {bundled_spaces()}.")
    data = read_space_file(path) or {}
    return str(data.get("description", ""))


MAX_SPACE_FILE_BYTES = 1_000_000  # a space is a page of YAML; anything bigger is a mistake


class _AliasFreeSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases: ``*name`` lets a few hundred bytes expand
    to gigabytes (a "billion laughs" file), and a space never needs one. It refuses a key
    given twice in one mapping too, where YAML would keep the last silently."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed; write the values out", mark
            )
        return super().compose_node(parent, index)


def read_space_file(path: Path) -> Any:
    """A space file's YAML, safely: no tags that build objects, no aliases, bounded size."""
    size = path.stat().st_size
    if size > MAX_SPACE_FILE_BYTES:
        raise SpaceError(
            f"space file {path}: {size} bytes, more than a space needs "
            f"({MAX_SPACE_FILE_BYTES} at most)."
        )
    try:
        text = path.read_text(encoding="utf-8")
        return yaml.load(text, Loader=_AliasFreeSafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpaceError(f"space file {path}: not valid YAML ({exc}).") from None
    except RecursionError:  # a space nests four levels
        raise SpaceError(f"space file {path}: YAML nested too deeply for a space.") from None
