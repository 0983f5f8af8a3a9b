"""The report's pages as text: Markdown and one self-contained HTML file from the same blocks, and the
tables as text (aligned, CSV, Markdown, JSON). Pure functions: no numbers are computed here."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "csv", "markdown", "json")
LONG_LIST = 1000  # items past which a list of verdict.json is written on one line

# ("h2", text) ("p", text) ("ul", [text]) ("table", DataFrame) ("img", (file, caption)) ...
Block = tuple[str, Any]  # ... ("code", text) ("quote", text) ("verdict", (supported, sentence))


def fmt_number(x: Any) -> str:
    """Four significant digits, integers as they are, missing values as an empty cell."""
    import numbers

    import pandas as pd

    if x is None or isinstance(x, str):
        return x or ""
    if isinstance(x, bool) or type(x).__name__ == "bool_":
        return str(bool(x))
    if not isinstance(x, list | tuple | dict) and pd.isna(x):
        return ""
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        x = float(x)
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.3e}"
        return f"{x:.4g}"
    return str(x)


def markdown_table(df: pd.DataFrame) -> str:
    def cell(x: Any) -> str:
        return fmt_number(x).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(cell(x) for x in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def csv_text(df: pd.DataFrame) -> str:
    """A table as CSV, the body written by Arrow's C++ writer (10x pandas' ``to_csv`` on 200,000 rows,
    which formats every float from Python-driven chunks). Quotes only where a value needs them, as
    pandas does; True/False as pandas writes them; pandas again for what Arrow cannot type."""
    import csv
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    flags = [c for c in df.columns if df[c].dtype == bool]
    body = df.assign(**{c: df[c].map({True: "True", False: "False"}) for c in flags}) if flags else df
    try:
        table = pa.Table.from_pandas(body, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return str(df.to_csv(index=False))
    out = io.BytesIO()
    for quoting in ("none", "needed"):  # "none" fails on a value holding a comma, quote or newline
        try:
            out = io.BytesIO()
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style=quoting))
            break
        except pa.ArrowInvalid:
            continue
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow([str(c) for c in df.columns])
    return head.getvalue() + out.getvalue().decode("utf-8")


def format_table(df: pd.DataFrame, fmt: str = "table") -> str:
    """The summary table as text: an aligned table, CSV, Markdown or JSON records."""
    if fmt == "csv":
        return csv_text(df)
    if fmt == "json":
        return str(df.to_json(orient="records", indent=1, double_precision=15)) + "\n"
    if fmt == "markdown":
        return markdown_table(df) + "\n"
    if fmt == "table":
        text = df.astype(object).map(fmt_number)
        return str(text.to_string(index=False)) + "\n"
    raise SweeperError(f"--format {fmt!r} is unknown\n  fix: use one of {', '.join(FORMATS)}")


def json_text(record: dict[str, Any]) -> str:
    """``json.dumps(record, indent=2)``, but a long list (200,000 trials indistinguishable from the best)
    on one line by the C encoder: the indenting encoder is pure Python, seconds for such a list."""
    long = {k: v for k, v in record.items() if isinstance(v, list) and len(v) > LONG_LIST}
    marks = {k: f"\x00{k}\x00" for k in long}
    text = json.dumps({**record, **marks}, indent=2, ensure_ascii=False)
    for k, mark in marks.items():
        text = text.replace(json.dumps(mark, ensure_ascii=False), json.dumps(long[k], ensure_ascii=False))
    return text


def interval(low: float, high: float) -> str:
    return f"[{fmt_number(low)}, {fmt_number(high)}]" if fmt_number(low) else ""


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for kind, body in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + body)
        elif kind == "p":
            out.append(body)
        elif kind == "quote":
            out.append("> " + body)
        elif kind == "verdict":
            out.append(f"**{body[1]}**")
        elif kind == "ul":
            out.append("\n".join(f"- {x}" for x in body))
        elif kind == "table":
            out.append(markdown_table(body))
        elif kind == "img":
            out.append(f"![{body[1]}]({body[0]})\n\n*{body[1]}*")
        elif kind == "code":
            out.append("```yaml\n" + body.rstrip() + "\n```")
    return "\n\n".join(out) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3} tr:nth-child(even) td{background:#fafafa}
blockquote{border-left:4px solid #999;margin:0;padding:.2em 1em;color:#444;font-style:italic}
.verdict{padding:.8em 1em;border-radius:6px;font-weight:600;font-size:1.05em}
.yes{background:#e6f4ea;border:1px solid #34a853}.no{background:#fdecea;border:1px solid #d93025}
figure{margin:1.2em 0}figcaption{color:#555;font-size:.9em}img{max-width:100%}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
"""


def _inline(text: str) -> str:
    """Escape, then the two Markdown marks the blocks use: **bold** and `code`."""
    import re

    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt_number(x))}</td>" for x in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def render_html(blocks: list[Block], *, title: str, images: Path) -> str:
    """One file, images embedded as data URIs, so it opens from disk or an e-mail attachment."""
    parts: list[str] = []
    for kind, body in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{_inline(body)}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(body)}</p>")
        elif kind == "quote":
            parts.append(f"<blockquote>{_inline(body)}</blockquote>")
        elif kind == "verdict":
            cls = "yes" if body[0] else "no"
            parts.append(f'<p class="verdict {cls}">{_inline(body[1])}</p>')
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in body) + "</ul>")
        elif kind == "table":
            parts.append(html_table(body))
        elif kind == "img":
            data = base64.b64encode((images / body[0]).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(body[0])}" '
                f'src="data:image/png;base64,{data}"><figcaption>{_inline(body[1])}'
                "</figcaption></figure>"
            )
        elif kind == "code":
            parts.append(f"<pre><code>{html.escape(body)}</code></pre>")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
