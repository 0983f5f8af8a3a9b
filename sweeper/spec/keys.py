"""README's tables of sweep-file keys, written from the schema's descriptions so they have one home.

``python -m sweeper.spec.keys`` rewrites every table of this checkout's README.md that stands between
``<!-- keys: BLOCK -->`` and ``<!-- /keys -->`` (BLOCK: ``sweep`` for the top level, or a block such
as ``compare``); a unit test fails when README and the schema disagree."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

TABLE = re.compile(r"(<!-- keys: (\w+) -->\n).*?(<!-- /keys -->)", re.DOTALL)
EXPANDED = ("search",)  # top-level blocks whose keys get rows of their own in the sweep table


def key_table(block: str) -> str:
    """The Markdown table of ``block``'s keys: ``sweep`` for the top level, else a top-level key."""
    from sweeper.spec.experiment import RESERVED
    from sweeper.spec.schema import json_schema

    schema = json_schema()

    def model(key: str) -> dict[str, Any]:
        ref = schema["properties"][key].get("$ref") or next(
            s["$ref"] for s in schema["properties"][key]["anyOf"] if "$ref" in s
        )
        found: dict[str, Any] = schema["$defs"][ref.rsplit("/", 1)[1]]
        return found

    rows: list[tuple[str, str]] = []
    for key, prop in (schema if block == "sweep" else model(block))["properties"].items():
        rows.append((key, prop["description"]))
        if block == "sweep" and key in EXPANDED:
            rows += [(f"{key}.{sub}", p["description"]) for sub, p in model(key)["properties"].items()]
    lines = ["| key | meaning |", "|---|---|"]
    lines += [f"| `{key}` | {text.replace('|', chr(92) + '|')} |" for key, text in rows]
    if block == "sweep":
        lines.append(
            "\nNames of variables, metrics and seed factors must be identifiers and must not clash with the "
            f"columns of the trial and history tables: {', '.join(f'`{n}`' for n in sorted(RESERVED))}."
        )
    return "\n".join(lines)


def with_tables(text: str) -> str:
    """``text`` with every marked table written anew from the schema."""
    return TABLE.sub(lambda m: f"{m[1]}{key_table(m[2])}\n{m[3]}", text)


README = Path(__file__).resolve().parents[2] / "README.md"


def main(target: Path = README) -> None:
    """Rewrite the key tables of the Markdown file ``target`` in place (atomically)."""
    text = with_tables(target.read_text(encoding="utf-8"))
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, target.stat().st_mode)
    os.replace(tmp, target)


if __name__ == "__main__":
    main()
