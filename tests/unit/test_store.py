"""results/store.py and run/stored.py on a file:// URI (a real pyarrow filesystem, no server): a copy
that follows a results URI, and runs that put their artifacts and read declared components there."""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sweeper.errors import StorageError, SweeperError
from sweeper.results.store import COPY_OF, Replica, Uploader, readable, staged, storage_env
from sweeper.run.objective import execute
from sweeper.run.stored import artifact_dir
from sweeper.run.types import Run, RunContext


def makes_a_model(x: float, seed: int, trial, config: str) -> dict[str, float]:
    (trial.artifact_dir / "model.txt").write_text(f"{x} {seed} {Path(config).read_text()}")
    trial.log_component("model", "model.txt")
    return {"loss": x}


def test_a_replica_follows_the_uri_and_leaves_its_own_files_alone(tmp_path, monkeypatch):
    remote = tmp_path / "bucket" / "exp"
    (remote / "trials").mkdir(parents=True)
    (remote / "artifacts" / "trial-0").mkdir(parents=True)
    (remote / "experiment.json").write_text("{}")
    (remote / "trials" / "a.parquet").write_bytes(b"a")
    (remote / "artifacts" / "trial-0" / "big.bin").write_bytes(b"x" * 10)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with Replica(remote.as_uri()) as replica:
        _follows(replica.pull(), remote)
    assert not list((tmp_path / "tmp").iterdir())  # the copy goes with its block


def _follows(replica: Replica, remote: Path) -> None:
    copy = replica.folder
    assert (copy / "trials" / "a.parquet").read_bytes() == b"a"
    assert not (copy / "artifacts").exists()  # no view reads artifacts: they stay in the bucket
    assert (copy / COPY_OF).read_text().strip() == remote.as_uri()
    (copy / "report").mkdir()
    (copy / "report" / "index.html").write_text("mine")  # rendered here, never in the bucket
    (remote / "trials" / "b.parquet").write_bytes(b"b")  # compaction: b replaces a
    (remote / "trials" / "a.parquet").unlink()
    replica.pull()
    assert sorted(p.name for p in (copy / "trials").iterdir()) == ["b.parquet"]
    assert (copy / "report" / "index.html").read_text() == "mine"


def test_a_replica_of_an_empty_prefix_says_so_and_leaves_no_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(SweeperError, match="no results there"), readable((tmp_path / "nothing").as_uri()):
        pass
    assert not list((tmp_path / "tmp").iterdir())


def _staged_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[object]]:
    """A file:// bucket, the temporary folder in tmp_path, and the removals registered for exit (not
    run; anything else registered meanwhile, pyarrow's S3 finalizer on its import, is)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    at_exit: list[object] = []
    register = atexit.register

    def removal(call: Any, *args: Any, **kw: Any) -> Any:
        if call is not shutil.rmtree:
            return register(call, *args, **kw)
        at_exit.append((call, *args, kw))
        return call

    monkeypatch.setattr(atexit, "register", removal)
    return (tmp_path / "bucket").as_uri(), at_exit


def test_a_staging_copy_all_up_outlives_its_block_and_goes_at_exit(tmp_path, monkeypatch):
    uri, at_exit = _staged_sweep(tmp_path, monkeypatch)
    with staged(uri, "exp", lambda folder, uri: None) as up:
        (up.folder / "experiment.json").write_text("{}")
    assert (up.folder / "experiment.json").is_file()  # SweepResult.path reads it after the launch
    assert (tmp_path / "bucket" / "exp" / "experiment.json").read_text() == "{}"
    [(remove, root, kw)] = at_exit
    remove(root, **kw)
    assert not list((tmp_path / "tmp").iterdir())


def test_a_staging_copy_whose_last_upload_fails_stays_and_is_named(tmp_path, monkeypatch):
    uri, at_exit = _staged_sweep(tmp_path, monkeypatch)

    def refused(self: Uploader) -> None:
        raise OSError("AWS Error NETWORK_CONNECTION")

    with (
        pytest.raises(StorageError, match="the last upload failed") as err,
        staged(uri, "exp", lambda folder, uri: None) as up,
    ):
        (up.folder / "experiment.json").write_text("{}")
        monkeypatch.setattr(Uploader, "push", refused)
    assert f"every recorded run is kept in {up.folder}" in str(err.value)
    assert f"aws s3 sync {up.folder} {uri}/exp" in str(err.value)
    assert (up.folder / "experiment.json").is_file() and not at_exit


def test_a_heartbeat_that_cannot_be_marked_exited_is_a_warning_not_an_error(tmp_path, monkeypatch, capsys):
    """Every run is up when the driver says it exited: a bucket that refuses that last put costs a
    warning (a resume waits for the heartbeat to go stale), never the launch's result."""
    uri, at_exit = _staged_sweep(tmp_path, monkeypatch)

    def refused(self: Uploader, rec: dict[str, Any]) -> None:
        raise OSError("AWS Error NETWORK_CONNECTION")

    with staged(uri, "exp", lambda folder, uri: None) as up:
        (up.folder / "experiment.json").write_text("{}")
        (up.folder / "driver.json").write_text('{"state": "running"}')
        up.close()  # the runs are up (what _finish's close does first) ...
        monkeypatch.setattr(Uploader, "_put_heartbeat", refused)  # ... then the bucket goes away
    assert (tmp_path / "bucket" / "exp" / "experiment.json").read_text() == "{}"
    err = capsys.readouterr().err
    assert f"warning: {uri}/exp: could not mark the driver exited (AWS Error NETWORK_CONNECTION)" in err
    assert len(at_exit) == 1  # the staging copy still goes at exit: nothing is lost with it


def test_a_refused_staging_leaves_no_copy(tmp_path, monkeypatch):
    uri, at_exit = _staged_sweep(tmp_path, monkeypatch)
    (tmp_path / "bucket" / "exp").mkdir(parents=True)
    (tmp_path / "bucket" / "exp" / "experiment.json").write_text("{}")

    def live(folder: Path, uri: str) -> None:
        raise SweeperError("is being run by another sweeper driver")

    with pytest.raises(SweeperError, match="another sweeper driver"), staged(uri, "exp", live):
        pass
    assert not list((tmp_path / "tmp").iterdir()) and not at_exit


def test_a_copy_of_a_uri_reads_a_fresh_heartbeat_as_running_even_from_this_host(tmp_path):
    """A bucket has no lock file: a copy's driver is alive while its heartbeat is fresh."""
    from sweeper.results.lock import is_locked

    beat = {
        "state": "running",
        "pid": 1,
        "host": socket.gethostname(),
        "heartbeat_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    (tmp_path / "driver.json").write_text(json.dumps(beat))
    assert not is_locked(tmp_path)  # a local folder: this host's flock decides, and nobody holds it
    (tmp_path / COPY_OF).write_text("s3://b/x\n")
    assert is_locked(tmp_path)


def test_runs_put_their_artifacts_under_the_uri_and_read_components_from_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert ("AWS_ENDPOINT_URL", "http://127.0.0.1:1") in storage_env()
    staging = tmp_path / "staging" / "exp"  # the driver's copy, which a worker elsewhere never sees
    bucket = tmp_path / "bucket" / "exp"
    (bucket / "artifacts" / "components").mkdir(parents=True)
    (bucket / "artifacts" / "components" / "config.json").write_text('{"n": 7}')
    ref = RunContext(
        "tests.unit.test_store:makes_a_model",
        str(Path(__file__).parents[2]),
        ("loss",),
        folder=str(staging),
        inputs=(("config", str(staging / "artifacts" / "components" / "config.json")),),
        results_uri=bucket.as_uri(),
        storage_env=(("SWEEPER_TEST_STORE", "set"),),
    )
    assert "set" not in repr(ref)  # credentials never show in a repr
    [out] = execute(ref, [Run(3, 1, 42, {"x": 0.5})])
    assert out.status == "complete", out.error
    put = bucket / "artifacts" / "trial-3" / "rep-1" / "model.txt"
    assert put.read_text() == '0.5 42 {"n": 7}'  # the component came from the bucket
    assert [c.uri for c in out.components] == [f"{bucket.as_uri()}/artifacts/trial-3/rep-1/model.txt"]
    assert not staging.exists()  # nothing was written where the driver's copy would be
    here = artifact_dir(ref, Run(3, 1, 42, {}))  # the run's folder on its machine, put in the bucket
    assert not here.exists() and not here.parent.exists()  # trial-3 too: no empty folders pile up
    assert "SWEEPER_TEST_STORE" not in os.environ  # the driver's variables were set only meanwhile


def test_a_run_whose_artifacts_cannot_be_put_fails_saying_where_they_stay(tmp_path):
    (tmp_path / "bucket").write_text("a file, not a folder")
    (tmp_path / "config.json").write_text("{}")
    ref = RunContext(
        "tests.unit.test_store:makes_a_model",
        str(Path(__file__).parents[2]),
        ("loss",),
        folder=str(tmp_path / "staging"),
        inputs=(("config", str(tmp_path / "config.json")),),  # outside the results folder: as given
        results_uri=f"{(tmp_path / 'bucket').as_uri()}/exp",
    )
    [out] = execute(ref, [Run(0, 0, 1, {"x": 1.0})])
    assert out.status == "failed" and out.metrics == {"loss": 1.0}
    assert "artifacts could not be put at" in out.error and "fix:" in out.error
    kept = out.error.split("they stay in ")[1].split(" on ")[0]
    assert (Path(kept) / "model.txt").is_file()


def test_the_uploader_puts_a_rows_links_and_curve_before_the_row(tmp_path):
    """A driver killed mid-push leaves no trial-table part in the bucket without its runs' links:
    on disk those are written first, and the uploader puts ``trials/`` after everything else."""
    folder = tmp_path / "exp"
    names = [
        "trials/part-000001.parquet",
        "components/links/part-000000.parquet",
        "experiment.json",
        "history/part-000003.parquet",
        "components/items/part-000000.parquet",
    ]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())
    up = Uploader(folder, (tmp_path / "bucket" / "exp").as_uri())
    put: list[str] = []

    class Recording:  # the real file:// filesystem, with the order of its puts noted
        def __init__(self, remote):
            self._remote = remote

        def __getattr__(self, name):
            return getattr(self._remote, name)

        def open_output_stream(self, path):
            put.append(path.rsplit("/exp/", 1)[1])
            return self._remote.open_output_stream(path)

    up.remote = Recording(up.remote)
    up.push()
    assert put == [
        "components/items/part-000000.parquet",
        "components/links/part-000000.parquet",
        "history/part-000003.parquet",
        "trials/part-000001.parquet",
        "experiment.json",
    ]
    assert (tmp_path / "bucket" / "exp" / "trials" / "part-000001.parquet").read_bytes() == names[0].encode()


def test_a_worker_fetches_a_driver_made_input_once_and_again_when_its_copy_is_gone(tmp_path, monkeypatch):
    """A declared component the driver made in its results folder is read from the bucket into this
    machine's cache once per worker process; a copy a tmp cleaner took is fetched again, not handed
    to the run as a path that is not there."""
    from sweeper.run import stored
    from sweeper.run.types import RunContext

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setattr(stored, "_FETCHED", {})
    bucket = tmp_path / "bucket" / "exp"
    (bucket / "components").mkdir(parents=True)
    (bucket / "components" / "meta.json").write_text('{"source": "UCI"}')
    driver = "/driver/staging/exp"
    ref = RunContext(
        "m:f",
        ".",
        ("y",),
        folder=driver,
        inputs=(("meta", f"{driver}/components/meta.json"), ("data", "/shared/data.npz")),
        results_uri=bucket.as_uri(),
    )
    fetches: list[str] = []
    fetch = stored.fetch
    monkeypatch.setattr(stored, "fetch", lambda uri, *a: (fetches.append(uri), fetch(uri, *a))[1])
    first = dict(stored.localize(ref).inputs)
    assert first["data"] == "/shared/data.npz"  # not the driver's: read where it is
    assert Path(first["meta"]).read_text() == '{"source": "UCI"}'
    assert dict(stored.localize(ref).inputs) == first and len(fetches) == 1
    Path(first["meta"]).unlink()
    assert Path(dict(stored.localize(ref).inputs)["meta"]).read_text() == '{"source": "UCI"}'
    assert len(fetches) == 2
