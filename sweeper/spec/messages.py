"""Pydantic's errors in sweeper's words: file:line:column, field, rule and fix, in file order.

One table maps each pydantic error type to a problem and a fix; the rules sweeper states itself
(:func:`sweeper.spec.block.rule`) carry their own. Where a name is close to a valid one, the fix
says ``did you mean``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sweeper.errors import SpecError
from sweeper.spec.block import hint, kind

if TYPE_CHECKING:
    from pydantic import ValidationError

Marks = Mapping[tuple[Any, ...], tuple[int, int]]
GUIDE = "see README, 'The sweep file'"
# The fix for a block of the wrong shape, by the block's key.
SHAPES = {
    "variables": "write e.g.\n    variables:\n      lr: {float: [1.0e-4, 1.0e-1], log: true}",
    "metrics": "name at least one, e.g.\n    metrics:\n      - accuracy: maximize",
    "when": "write e.g. when: {model: custom}",
    "choice": "write e.g. {choice: [adam, sgd]}",
    "components": "write e.g. components: {train_data: {path: data/train.npz, kind: dataset}}",
    "custom": "write e.g. {accelerator_type_a100: 1}",
    "within": "write within: dataset, or within: [dataset, task]",
    "replicates": "write replicates: 5, {min: 2, max: 10} or {data: 5, init: 2}",
}


def _show(value: Any) -> str:
    return repr(value)[:80]


def _unquote(value: Any) -> str:
    """A number in quotes is text (strict, as pydantic is told to be): say that is what was wrong."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return " (in quotes it is text: drop them)"
    return ""


WORDS = {">=": "of at least", "<=": "of at most", ">": "above", "<": "below"}


def _number(e: dict[str, Any], word: str, bound: str) -> tuple[str, str]:
    limit = e["ctx"][bound]
    what = "a whole number" if isinstance(e["input"], int) else "a number"
    return (
        f"expected {what} {word} {limit}, got {_show(e['input'])}",
        f"use a value {WORDS[word]} {limit}",
    )


def _literal(e: dict[str, Any], key: str) -> tuple[str, str]:
    options = re.findall(r"'([^']*)'", e["ctx"]["expected"])
    listed = ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else "".join(options)
    what = "direction" if clean(e["loc"])[0] == "metrics" else key  # a metric's key is its name
    return (
        f"unknown {what} {_show(e['input'])}: not {listed}",
        f"{hint(e['input'], options)}use one of {', '.join(options)}",
    )


def _variable_form(e: dict[str, Any]) -> tuple[str, str]:
    if isinstance(e["input"], list):
        return "a bare list is ambiguous", f"write {{choice: {e['input']}}} to sweep over these values"
    return (
        "needs exactly one of choice, int, float, const",
        "e.g. {choice: [a, b]}, {int: [1, 10]}, {float: [0.0, 1.0], log: false}",
    )


def _pruner_form(e: dict[str, Any]) -> tuple[str, str]:
    from sweeper.spec.experiment import PRUNERS

    method = e["input"].get("method") if isinstance(e["input"], dict) else e["input"]
    if method is None or not isinstance(method, str):
        return (
            "expected {method: ..., option: value, ...}",
            f"write e.g. pruner: {{method: median, n_startup_trials: 5}}; methods: {', '.join(PRUNERS)}",
        )
    return f"unknown pruner {method!r}", f"{hint(method, list(PRUNERS))}use one of {', '.join(PRUNERS)}"


# pydantic error type -> (problem, fix) for its error dict ``e`` (type, loc, input, ctx) and the field's key
TABLE: dict[str, Callable[[dict[str, Any], str], tuple[str, str]]] = {
    "sweeper": lambda e, key: (e["ctx"]["problem"], e["ctx"]["fix"]),
    "int_type": lambda e, key: (
        f"expected a whole number, got {_show(e['input'])}",
        "write an integer such as 5"
        + (" (a number like 1e6 is a float in YAML: write 1000000)" if isinstance(e["input"], float) else "")
        + _unquote(e["input"]),
    ),
    "float_type": lambda e, key: (
        f"expected a finite number, got {_show(e['input'])}",
        "write a number such as 1 or 0.5" + _unquote(e["input"]),
    ),
    "finite_number": lambda e, key: (
        f"expected a finite number, got {_show(e['input'])}",
        "write a number such as 1 or 0.5",
    ),
    "bool_type": lambda e, key: (f"expected true or false, got {_show(e['input'])}", "write true or false"),
    "string_type": lambda e, key: (f"expected text, got {kind(e['input'])}", "write a non-empty string"),
    "string_too_short": lambda e, key: ("expected text, got an empty string", "write a non-empty string"),
    "list_type": lambda e, key: (
        f"expected a list, got {kind(e['input'])}",
        SHAPES.get(key, f"write [a, b, ...] ({GUIDE})"),
    ),
    "dict_type": lambda e, key: (
        f"expected a mapping, got {kind(e['input'])}",
        SHAPES.get(key, f"write key: value pairs ({GUIDE})"),
    ),
    "too_short": lambda e, key: (
        f"{'is empty: it ' if not e['input'] else ''}needs at least {e['ctx']['min_length']}"
        f" entr{'y' if e['ctx']['min_length'] == 1 else 'ies'}",
        SHAPES.get(key, GUIDE),
    ),
    "too_long": lambda e, key: (f"has more than {e['ctx']['max_length']} entries", SHAPES.get(key, GUIDE)),
    "greater_than_equal": lambda e, key: _number(e, ">=", "ge"),
    "greater_than": lambda e, key: _number(e, ">", "gt"),
    "less_than_equal": lambda e, key: _number(e, "<=", "le"),
    "less_than": lambda e, key: _number(e, "<", "lt"),
    "literal_error": _literal,
    "variable_form": lambda e, key: _variable_form(e),
    "pruner_form": lambda e, key: _pruner_form(e),
    "replicates_form": lambda e, key: (
        "mixes min/max (racing) with seed factors"
        f" ({', '.join(str(k) for k in e['input'] if k not in ('min', 'max'))})",
        "write either {min: A, max: B} or {factor: n, ...}, not both",
    ),
    "invalid_key": lambda e, key: (
        f"the key {_show(e['input'])} is not text",
        "write key: value with a text key",
    ),
}


def clean(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The path as the file spells it: no union tags (``@int``) and no pydantic ``[key]`` markers."""
    return tuple(p for p in loc if not (isinstance(p, str) and (p == "[key]" or p.startswith("@"))))


def field_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else f".{p}" if out else str(p)
    return out


def spec_error(
    exc: ValidationError, *, source: str, marks: Marks, order: Marks, prefix: tuple[Any, ...] = ()
) -> SpecError:
    """One SpecError holding every mistake of ``exc``, sorted as they appear in the file (or dict)."""
    loose = {tuple(p for p in k if not isinstance(p, int)): v for k, v in reversed(list(marks.items()))}
    rank = {tuple(p for p in k if not isinstance(p, int)): v for k, v in reversed(list(order.items()))}

    def place(loc: tuple[Any, ...], table: Marks, fallback: Marks) -> tuple[int, int]:
        for n in range(len(loc), 0, -1):
            at = table.get(loc[:n]) or fallback.get(tuple(p for p in loc[:n] if not isinstance(p, int)))
            if at:
                return at
        return (0, 0)

    found = []
    seen = set()
    for e in exc.errors(include_url=False):
        loc = (*prefix, *clean(e["loc"]))
        key = str(next((p for p in reversed(loc) if isinstance(p, str)), ""))
        word = TABLE.get(e["type"])
        problem, fix = word(dict(e), key) if word else (e["msg"], GUIDE)
        if e["type"] == "missing":
            block = field_text(loc[:-1])
            whole = "a spec" if source.startswith("<") else "a sweep file"
            problem = f"missing: {'the ' + block + ' block' if block else whole} needs it"
            fix = f"add {key}: to {block}" if block else f"add {key}: ({GUIDE})"
        if source.startswith("<"):  # a spec given in Python: no sweep file to speak of
            fix = fix.replace(GUIDE, "see README, 'Python API'")
        if (loc, problem) in seen:  # a union reports the same mistake once per member
            continue
        seen.add((loc, problem))
        line, column = place(loc, marks, loose)
        found.append((place(loc, order, rank), line, column, loc, problem, fix))
    found.sort(key=lambda f: f[0])
    errors = [
        SpecError(problem, source=source, field=field_text(loc), fix=fix, line=line, column=column)
        for _, line, column, loc, problem, fix in found
    ]
    first = errors[0]
    return SpecError(
        first.problem,
        source=source,
        field=first.field,
        fix=first.fix,
        line=first.line,
        column=first.column,
        more=errors[1:],
    )


def positions(data: Any) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Every path into plain data, numbered in reading order (what sorts a dict spec's mistakes)."""
    out: dict[tuple[Any, ...], tuple[int, int]] = {}
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        at, value = stack.pop()
        out[at] = (len(out), 0)
        if len(at) < 32:
            items = (
                list(value.items())
                if isinstance(value, dict)
                else list(enumerate(value))
                if isinstance(value, list)
                else []
            )
            stack += [((*at, k), v) for k, v in reversed(items)]
    return out
