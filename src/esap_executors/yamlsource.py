"""YAML loading that keeps line numbers, so errors can name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import BadInput
from .textfiles import read_user_text

MAX_DEPTH = 64  # a catalogue nests 4 or 5 levels


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


def load_yaml(path: str | Path, *, field: str | None = None) -> Any:
    """Load a YAML file; syntax errors become one BadInput line with file and line."""
    return load_yaml_text(read_user_text(path, field=field), str(path))


def load_yaml_text(text: str, source: str) -> Any:
    check_yaml_depth(text, source)
    loader = _LineLoader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, source) from None
    finally:
        loader.dispose()


def check_yaml_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before the (recursive) composer sees it."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else None
                    raise BadInput(f"nested deeper than {MAX_DEPTH} levels", source=source, line=line)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, source) from None


def _yaml_error(exc: yaml.YAMLError, text: str, source: str) -> BadInput:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        return BadInput(f"invalid YAML: {exc.problem}", source=source, line=mark.line + 1 if mark else None)
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return BadInput(f"invalid YAML: character {code:#x} is not allowed", source=source, line=line)
    return BadInput(f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                    source=source)


def no_unknown_keys(block: LocatedDict, known: set[str], source: str, prefix: str) -> None:
    """Refuse the first key of `block` not in `known`, naming its file, line and field."""
    for key in block:
        if key not in known:
            raise BadInput(f"unknown key (known: {', '.join(sorted(known))})", source=source,
                           line=block.line_of(key), field=f"{prefix}.{key}")
