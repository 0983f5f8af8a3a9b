"""Mirror a sweep to MLflow: one parent run per trial, one child run per replicate, the verdict on an
experiment-level run.

The trial table is the truth and MLflow a copy of it: :class:`MlflowMirror` compares the table (and
``history/``) with the runs already in the MLflow experiment (found by their ``sweeper.*`` tags) and
logs what is missing, in batches (``log_batch``). While a sweep runs it does so from a thread on the
driver every few seconds, so the sweep loop never waits on the server; a server that goes away costs
one warning, and whatever it missed is logged at the next sync, at the next launch (a resume), or by
``sweeper export DIR --mlflow URI``, which is the same sync on a finished folder.

Each child run has the replicate's variables and seed as params, its final metrics, every
``history/`` step of its last attempt as metric steps, tags for the experiment, hypothesis, trial,
replicate, status, attempt, node and error, and ``sweeper.artifact_uri`` pointing at its artifacts
folder. A parent run holds the trial's variables and, once every replicate is in, the mean of each
metric over its complete replicates (the trial value). A row is logged once it is a few seconds old,
so its history steps (flushed about every second) are in.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError, command
from sweeper.results.schema import run_artifacts

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.experiment import Experiment

MISSING = "mlflow is not installed\n  fix: pip install 'sweeper[mlflow]'"
SETTLE_S = 3.0  # a row this old has its history steps written too
EVERY_S = 2.0
BATCH = 900  # metrics per log_batch call (MLflow accepts at most 1000)
TAG = "sweeper."


def _client(uri: str) -> Any:
    # A dead server should cost seconds, not MLflow's default of minutes of retries per call.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise SweeperError(MISSING) from None
    return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def answering(uri: str) -> Iterator[None]:
    """What a command asks of MLflow, with MLflow's own failures (a server that does not answer, a
    store it refuses) as our error: where, the cause's first line, the fix. Not for the live mirror,
    which only warns."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as exc:
        raise SweeperError(
            f"MLflow at {uri} failed: {_first_line(exc)}\n  fix: start the tracking server (e.g. mlflow"
            " server --host 127.0.0.1 --port 5000) or correct --mlflow; nothing in the results folder"
            " depends on it, so run the command again once it answers"
        ) from None


def _first_line(exc: BaseException) -> str:
    """What an MLflow failure says, in a line: its message's first (MLflow's run to pages)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _ms(ts: Any) -> int | None:
    if ts is None or (isinstance(ts, float) and math.isnan(ts)):
        return None
    try:
        return int(ts.timestamp() * 1000)
    except (AttributeError, ValueError):
        return None


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


class MlflowMirror:
    """Logs a results folder's runs to MLflow; ``sync()`` is idempotent and catches up from the table."""

    def __init__(
        self, folder: str | Path, uri: str, experiment: str | None = None, spec: Experiment | None = None
    ):
        from sweeper.results.table import read_spec

        self.folder = Path(folder)
        self.uri = uri
        self.spec = spec or read_spec(self.folder)
        self.experiment = experiment or self.spec.name
        self.client = _client(uri)
        self._experiment_id: str | None = None
        self._parents: dict[int, tuple[str, str]] = {}  # trial -> (run id, logged summary)
        self._children: dict[tuple[int, int], tuple[str, str]] = {}  # (trial, rep) -> (run id, row key)
        self._known = False

    @property
    def runs(self) -> int:
        """Replicate runs known to be in MLflow."""
        return len(self._children)

    # -- what MLflow holds ------------------------------------------------------------------------
    def _experiment(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            self._experiment_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)
        return self._experiment_id

    def _load_known(self) -> None:
        """Index the runs this experiment already has in MLflow; drop any left half-logged."""
        if self._known:
            return
        exp = self._experiment()
        token = None
        while True:
            page = self.client.search_runs(
                [exp],
                filter_string=f"tags.`{TAG}experiment` = '{self.spec.name}'",
                max_results=1000,
                page_token=token,
            )
            for run in page:
                tags = run.data.tags
                if f"{TAG}trial" not in tags:
                    continue
                k = int(tags[f"{TAG}trial"])
                if f"{TAG}replicate" in tags:
                    if f"{TAG}row" not in tags or run.info.status == "RUNNING":  # half-logged: again
                        self.client.delete_run(run.info.run_id)
                        continue
                    self._children[(k, int(tags[f"{TAG}replicate"]))] = (run.info.run_id, tags[f"{TAG}row"])
                else:
                    self._parents[k] = (run.info.run_id, tags.get(f"{TAG}summary", ""))
            token = page.token
            if not token:
                break
        self._known = True

    # -- logging --------------------------------------------------------------------------------
    def _tags(self, **extra: Any) -> dict[str, str]:
        base = {f"{TAG}experiment": self.spec.name, f"{TAG}hypothesis": self.spec.hypothesis[:5000]}
        base.update({f"{TAG}{k}": _text(v)[:5000] for k, v in extra.items()})
        return base

    def _batch(
        self,
        run_id: str,
        metrics: Iterable[Any] = (),
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        ps = [Param(k, _text(v)[:6000]) for k, v in (params or {}).items()]
        ts = [RunTag(k, v) for k, v in (tags or {}).items()]
        ms = [m if isinstance(m, Metric) else Metric(*m) for m in metrics]
        for i in range(0, max(len(ms), 1), BATCH):
            self.client.log_batch(
                run_id, metrics=ms[i : i + BATCH], params=ps if i == 0 else [], tags=ts if i == 0 else []
            )

    def _parent(self, k: int, params: dict[str, Any], start: int | None) -> str:
        if k not in self._parents:
            run = self.client.create_run(
                self._experiment(),
                start_time=start,
                tags=self._tags(trial=k, kind="trial"),
                run_name=f"{self.spec.name}-trial-{k}",
            )
            self._batch(run.info.run_id, params=params)
            self._parents[k] = (run.info.run_id, "")
        return self._parents[k][0]

    def sync(self, *, settle: float = SETTLE_S) -> int:
        """Log every row (older than ``settle`` seconds) MLflow lacks; returns how many runs were logged."""
        from sweeper.results.history import load_history
        from sweeper.results.table import load

        if not (self.folder / "trials").is_dir():
            return 0
        self._load_known()
        table = load(self.folder)
        if table.empty:
            return 0
        cutoff = time.time() - settle
        history: pd.DataFrame | None = None
        names = [v.name for v in self.spec.variables]
        logged = 0
        for k, rows in table.groupby("trial", sort=True):
            k = int(k)
            first = rows.iloc[0]
            params = {n: first[n] for n in names if n in rows.columns and _text(first[n])}
            for _, row in rows.iterrows():
                r = int(row["replicate"])
                key = f"{_text(row.get('attempt'))}:{_ms(row.get('ended_at'))}"
                have = self._children.get((k, r))
                if have is not None and have[1] == key:
                    continue
                if (_ms(row.get("ended_at")) or 0) / 1000 > cutoff:
                    continue
                if history is None:
                    history = load_history(self.folder)
                if have is not None:  # the row changed (a retried replicate): log it afresh
                    self.client.delete_run(have[0])
                parent = self._parent(k, params, _ms(rows["started_at"].min()))
                self._children[(k, r)] = (self._child(parent, k, row, params, history), key)
                logged += 1
            self._summarise(k, rows)
        return logged

    def _child(self, parent: str, k: int, row: Any, params: dict[str, Any], history: pd.DataFrame) -> str:
        from mlflow.entities import Metric

        r = int(row["replicate"])
        end = _ms(row.get("ended_at")) or int(time.time() * 1000)
        run = self.client.create_run(
            self._experiment(),
            start_time=_ms(row.get("started_at")),
            tags={"mlflow.parentRunId": parent, **self._tags(trial=k, replicate=r, kind="replicate")},
            run_name=f"{self.spec.name}-trial-{k}-rep-{r}",
        )
        rid = run.info.run_id
        metrics: list[Any] = []
        last: dict[str, int] = {}  # metric -> its last history step
        if len(history):
            mine = history[(history["trial"] == k) & (history["replicate"] == r)]
            if len(mine):
                mine = mine[mine["attempt"] == mine["attempt"].max()]
                cols = [c for c in mine.columns if c not in ("trial", "replicate", "attempt", "step", "time")]
                for h in mine.to_dict("records"):
                    t = _ms(h["time"]) or end
                    for c in cols:
                        if (v := _finite(h[c])) is not None:
                            metrics.append(Metric(c, v, t, int(h["step"])))
                            last[c] = max(last.get(c, 0), int(h["step"]))
        # the final value comes after the curve, so MLflow's latest value of a metric is the final one
        for m in self.spec.metrics:
            if (v := _finite(row.get(m.name))) is not None:
                metrics.append(Metric(m.name, v, end, last[m.name] + 1 if m.name in last else 0))
        art = self.folder / run_artifacts(k, r)
        self._batch(rid, metrics, params={**params, "seed": int(row["seed"])})
        status = str(row["status"])
        self._batch(
            rid,
            tags=self._tags(
                trial=k,
                replicate=r,
                seed=int(row["seed"]),
                status=status,
                attempt=row.get("attempt"),
                node=row.get("node"),
                error=row.get("error"),
                artifact_uri=art.resolve().as_uri() if art.exists() else "",
            ),
        )
        self.client.set_terminated(
            rid,
            "FINISHED" if status == "complete" else "KILLED" if status == "pruned" else "FAILED",
            end_time=end,
        )
        # last: the mark that the run is whole (a server lost before it leaves a run logged again)
        self.client.set_tag(rid, f"{TAG}row", f"{_text(row.get('attempt'))}:{_ms(row.get('ended_at'))}")
        return str(rid)

    def _summarise(self, k: int, rows: pd.DataFrame) -> None:
        """Once every replicate of trial k is in, its parent gets the trial value of each metric."""
        from mlflow.entities import Metric

        if len(rows) < self.spec.replicates or k not in self._parents:
            return
        summary = ",".join(self._children.get((k, int(r)), ("", ""))[1] for r in sorted(rows["replicate"]))
        rid, done = self._parents[k]
        if done == summary or any((k, int(r)) not in self._children for r in rows["replicate"]):
            return
        ok = rows[rows["status"] == "complete"]
        end = _ms(rows["ended_at"].max()) or int(time.time() * 1000)
        metrics = [
            Metric(m.name, v, end, 0)
            for m in self.spec.metrics
            if m.name in ok.columns and (v := _finite(ok[m.name].mean())) is not None
        ]
        statuses = sorted(set(rows["status"]))
        status = "complete" if len(ok) else ("pruned" if "pruned" in statuses else "failed")
        self._batch(
            rid,
            metrics,
            tags=self._tags(
                trial=k, kind="trial", status=status, replicates=len(rows), complete=len(ok), summary=summary
            ),
        )
        self.client.set_terminated(rid, "FINISHED" if len(ok) else "FAILED", end_time=end)
        self._parents[k] = (rid, summary)

    def log_verdict(self) -> str | None:
        """The verdict (tags and verdict.json) on the experiment-level run; returns its run id."""
        from sweeper.analysis.hypothesis import verdict

        v = verdict(self.folder)
        exp = self._experiment()
        found = self.client.search_runs(
            [exp],
            filter_string=f"tags.`{TAG}experiment` = '{self.spec.name}' and tags.`{TAG}kind` = 'experiment'",
            max_results=1,
        )
        rid = (
            found[0].info.run_id
            if found
            else self.client.create_run(
                exp, tags=self._tags(kind="experiment"), run_name=f"{self.spec.name}-verdict"
            ).info.run_id
        )
        if v is None:
            self._batch(rid, tags={f"{TAG}verdict": "no compare: in the sweep file"})
            return str(rid)
        d = v.to_dict()
        tags = {
            f"verdict.{k}": _text(d.get(k))
            for k in (
                "supported",
                "sentence",
                "effect",
                "ci_low",
                "ci_high",
                "p_value",
                "test",
                "n",
                "treatment",
                "baseline",
                "metric",
            )
        }
        self._batch(rid, tags=tags)
        self.client.log_text(rid, json.dumps(d, indent=2, ensure_ascii=False) + "\n", "verdict.json")
        return str(rid)


class LiveMirror:
    """Runs ``MlflowMirror.sync`` on a driver thread while the sweep runs; never raises into the sweep."""

    def __init__(self, folder: Path, spec: Experiment, uri: str, experiment: str | None):
        self.mirror = MlflowMirror(folder, uri, experiment, spec)  # refuses early when mlflow is missing
        self._stop = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="sweeper-mlflow", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        wait = EVERY_S
        while not self._stop.wait(wait):
            wait = EVERY_S if self._try() else min(60.0, wait * 2)

    def _try(self, settle: float = SETTLE_S) -> bool:
        try:
            self.mirror.sync(settle=settle)
        except Exception as exc:  # a tracking server is never worth a sweep
            if not self._warned:
                self._warned = True
                print(
                    f"\nwarning: MLflow at {self.mirror.uri} failed ({_first_line(exc)}); the sweep goes on"
                    " and the runs it misses are logged when it is back, on resume, or by"
                    f" `{command('export', self.mirror.folder, '--mlflow', self.mirror.uri)}`",
                    file=sys.stderr,
                )
            self.mirror._known = False  # re-read what it holds once it answers again
            return False
        if self._warned:
            print(f"\nMLflow at {self.mirror.uri} answers again; caught up", file=sys.stderr)
            self._warned = False
        return True

    def close(self) -> None:
        """Stop the thread, then one last sync of everything (no settling: the sweep has ended)."""
        self._stop.set()
        self._thread.join()
        self._try(settle=0.0)
