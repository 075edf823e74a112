"""YAML loading that keeps line numbers, so errors can name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import BadInput


class LocatedDict(dict[str, Any]):
    """A mapping from YAML that remembers where it and each of its keys came from."""

    source: str = ""
    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LocatedDict:
    loader.flatten_mapping(node)
    result = LocatedDict()
    result.source = loader.name
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            raise BadInput(
                "appears twice", source=loader.name, line=key_node.start_mark.line + 1, field=key
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | Path) -> Any:
    """Load a YAML file; syntax errors become one BadInput line with file and line."""
    text_path = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", source=text_path) from None
    return load_yaml_text(text, text_path)


def load_yaml_text(text: str, source: str) -> Any:
    loader = _LineLoader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise BadInput(f"invalid YAML: {exc.problem}", source=source, line=line) from None
    finally:
        loader.dispose()


def no_unknown_keys(block: LocatedDict, known: set[str], source: str, prefix: str) -> None:
    """Refuse the first key of `block` not in `known`, naming its file, line and field."""
    for key in block:
        if key not in known:
            raise BadInput(f"unknown key (known: {', '.join(sorted(known))})", source=source,
                           line=block.line_of(key), field=f"{prefix}.{key}")
