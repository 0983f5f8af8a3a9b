"""Reading a sweep file: YAML to plain data, with the line and column of every key and item.

PyYAML's own constructor forgets where a value came from, accepts a key twice (the last wins,
silently) and expands aliases without limit (an alias bomb in a component's ``value`` fills memory).
So the node tree is walked here instead: each mapping entry and list item records its mark, a
repeated key is refused, and the walk stops after :data:`MAX_VALUES` values or :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sweeper.errors import SpecError

Path_ = tuple[Any, ...]  # where a value sits: keys and list indices from the top
MAX_VALUES = 100_000  # a real sweep file has hundreds; an alias bomb has billions
MAX_DEPTH = 64
_MAP, _SEQ, _STR = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str"
# YAML 1.2 (and every editor's YAML server) reads 1e-4 as a number; PyYAML keeps YAML 1.1's rule that
# an exponent needs a dot and a sign (1.0e-4), so a learning rate written as researchers write it was text
_EXPONENT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")


def read_yaml(path: Path) -> tuple[Any, dict[Path_, tuple[int, int]]]:
    """The file's data and, for every path into it, the 1-based (line, column) where it is written."""
    import yaml

    def fail(problem: str, fix: str, line: int = 0, column: int = 0) -> SpecError:
        return SpecError(problem, source=str(path), fix=fix, line=line, column=column)

    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, ValueError) as exc:
        raise fail(f"cannot read: {exc}", "save it as UTF-8 YAML") from None
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters at once
        raise fail(
            f"not valid YAML: {exc}", "remove the control characters (save it as plain text)"
        ) from None
    marks: dict[Path_, tuple[int, int]] = {}
    count = 0

    def walk(node: Any, at: Path_, seen: tuple[int, ...]) -> Any:
        nonlocal count
        count += 1
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        if count > MAX_VALUES:
            raise fail(
                f"expands to more than {MAX_VALUES} values",
                "a sweep file needs far fewer; check for aliases (*name) repeated inside each other",
                line,
                column,
            )
        if id(node) in seen or len(seen) > MAX_DEPTH:
            raise fail(
                "nested too deeply to read (or an alias refers to itself)",
                "a sweep file needs a few levels of nesting; check for runaway brackets and aliases",
                line,
                column,
            )
        inner = (*seen, id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR and node.style is None and _EXPONENT.fullmatch(node.value):
                return float(node.value)  # plain, not quoted: '1e-4' stays text
            return loader.construct_object(node)
        if node.tag not in (_MAP, _SEQ):
            raise fail(
                f"the tag {node.tag} is not allowed", "write plain YAML data, without tags", line, column
            )
        if isinstance(node, yaml.SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                marks.setdefault((*at, i), (item.start_mark.line + 1, item.start_mark.column + 1))
                out.append(walk(item, (*at, i), inner))
            return out
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)  # `<<: *base` merges: the file's own keys win
        result: dict[Any, Any] = {}
        firsts: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = walk(key_node, at, inner)
            key_line, key_column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            try:
                hash(key)
            except TypeError:
                raise fail("a key must be text", "write key: value", key_line, key_column) from None
            if id(key_node) in own:
                if key in firsts:
                    raise fail(
                        f"the key {key!r} is given twice (first at line {firsts[key]})",
                        "keep one of them: YAML would silently use the last",
                        key_line,
                        key_column,
                    )
                firsts[key] = key_line
            marks[(*at, key)] = (key_line, key_column)
            result[key] = walk(value_node, (*at, key), inner)
        return result

    try:
        node = loader.get_single_node()
        data = None if node is None else walk(node, (), ())
    except RecursionError:
        raise fail(
            "nested too deeply to read",
            "a sweep file needs a few levels of nesting; check for runaway brackets",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        words = ", ".join(w for w in (getattr(exc, "context", None), getattr(exc, "problem", None)) if w)
        raise fail(
            f"not valid YAML: {words or exc}",
            "fix the YAML syntax at the line shown",
            mark.line + 1 if mark else 0,
            mark.column + 1 if mark else 0,
        ) from None
    finally:
        loader.dispose()
    return data, marks
