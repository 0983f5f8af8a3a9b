"""``sweeper serve DIR``: the report as it stands, on 127.0.0.1, re-rendered as rows land.

The page is exactly what ``sweeper report`` writes (``write_report``: the table is the only source),
rendered again at most every ``every`` seconds and only when the results folder changed, with a
progress banner from ``sweeper status`` on top. A small script polls ``/state`` and reloads the page
when a newer rendering exists, so an open tab follows the sweep without a second source of truth.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sweeper.errors import SweeperError

POLL_JS = """<script>
let seen = %s;
setInterval(async () => {
  try {
    const r = await fetch('/state', {cache: 'no-store'});
    const s = await r.json();
    if (s.version !== seen) location.reload();
  } catch (e) {}
}, 1500);
</script>"""


class LivePage:
    """The rendered page of one results folder, cached until the folder changes and ``every`` passed."""

    def __init__(self, folder: Path, every: float = 3.0, pull: Callable[[], None] | None = None):
        """``pull``: brings ``folder`` up to date first (a local copy of a results URI)."""
        self.folder, self.every, self.pull = folder, every, pull
        self.version = 0
        self._body = ""
        self._signature: tuple[Any, ...] | None = None
        self._rendered = 0.0
        self._lock = threading.Lock()

    def signature(self) -> tuple[Any, ...]:
        """What changes when a row lands or the driver's state changes (file names, sizes, mtimes)."""
        out: list[Any] = []
        for sub in ("trials", "history", "experiment.json"):
            p = self.folder / sub
            files = sorted(p.iterdir()) if p.is_dir() else [p] if p.exists() else []
            for f in files:
                try:
                    st = f.stat()
                except FileNotFoundError:  # compacted away meanwhile
                    continue
                out.append((f.name, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def refresh(self) -> None:
        """Render again if the folder changed and the last rendering is at least ``every`` old."""
        with self._lock:
            if time.monotonic() - self._rendered < self.every and self._signature is not None:
                return
            if self.pull is not None:
                self.pull()
            sig = self.signature()
            if sig == self._signature:
                return
            self._body = self._render()
            self._signature, self._rendered = sig, time.monotonic()
            self.version += 1

    def _render(self) -> str:
        from sweeper.report.build import write_report

        try:
            rep = write_report(self.folder)
        except SweeperError as exc:  # e.g. no finished run yet: say so and keep polling
            return f"<p>{html.escape(str(exc))}</p>"
        text = rep.html.read_text(encoding="utf-8")
        start, end = text.find("<body>"), text.rfind("</body>")
        return text if start < 0 or end < 0 else text[start + len("<body>") : end]

    def state(self) -> dict[str, Any]:
        from sweeper.results.status import experiment_status

        self.refresh()
        st = experiment_status(self.folder)
        want = (st.trials_total or 0) * st.replicates
        return {
            "version": self.version,
            "state": st.state,
            "runs": st.rows,
            "runs_total": want,
            "running": st.running,
            "trials": st.trials,
            "trials_total": st.trials_total,
        }

    def page(self) -> str:
        s = self.state()
        banner = (
            f'<div id="progress" class="{html.escape(s["state"])}"><b>{html.escape(s["state"])}</b>: '
            f'<progress value="{s["runs"]}" max="{max(1, s["runs_total"])}"></progress> '
            f"runs {s['runs']}/{s['runs_total']}, trials {s['trials']}/{s['trials_total']},"
            f" {s['running']} in flight"
            "<small> (live: re-rendered from the trial table as rows land)</small></div>"
        )
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>sweeper live: {html.escape(self.folder.name)}</title><style>{_css()}"
            "#progress{position:sticky;top:0;background:#f6f8fa;padding:6px;border-bottom:1px solid #ccc}"
            f"</style></head><body>{banner}\n{self._body}\n{POLL_JS % s['version']}</body></html>\n"
        )


def _css() -> str:
    from sweeper.report.render import CSS

    return CSS


def make_server(
    folder: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    every: float = 3.0,
    pull: Callable[[], None] | None = None,
) -> ThreadingHTTPServer:
    """An HTTP server for one results folder (``port=0``: a free port, see ``server_address``);
    ``pull`` refreshes a local copy of a results URI before each rendering."""
    from sweeper.results.table import check_results_folder

    folder = check_results_folder(folder)
    live = LivePage(folder, every, pull)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path == "/state":
                    body, kind = json.dumps(live.state()).encode(), "application/json"
                elif path in ("/", "/index.html"):
                    body, kind = live.page().encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
            except SweeperError as exc:
                body, kind = html.escape(str(exc)).encode(), "text/plain; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # one line a request is noise here
            pass

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise cannot_listen(host, port, exc) from None


def cannot_listen(host: str, port: int, exc: OSError) -> SweeperError:
    """The error of a page server (this one, optuna-dashboard) whose port is taken or not allowed."""
    return SweeperError(f"cannot listen on {host}:{port} ({exc})\n  fix: pick another --port")
