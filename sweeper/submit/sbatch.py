"""Run a sweep as one Slurm job: Ray on the allocation, the usual driver on its first node.

The job script comes from ``cluster/slurm/sweep.sbatch``. Values are filled in two ways, and only
these two: ``#SBATCH`` lines take values that :mod:`sweeper.spec.slurm` checked against strict
patterns (sbatch parses those lines itself), and every value in the shell body goes through
:func:`shlex.quote`. A results path such as ``/data/x'; rm -rf ~ #`` therefore reaches the job as a
string, never as code. The one exception is the ``setup:`` option, which is shell code on purpose.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sweeper.errors import SweeperError
from sweeper.spec.slurm import SlurmOptions

TEMPLATE = Path(__file__).with_name("sweep.sbatch")  # a link to cluster/slurm/sweep.sbatch
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
SUBDIR = "slurm"  # inside the experiment's folder: the script and the job's logs
ACTIVE = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SUSPENDED",
        "STAGE_OUT",
        "SIGNALING",
        "PREEMPTED",
    }
)


@dataclass(frozen=True, slots=True)
class JobState:
    """One look at a Slurm job: ``state`` is Slurm's word (RUNNING, COMPLETED, ...) or UNKNOWN."""

    job_id: str
    state: str
    reason: str = ""
    exit_code: str = ""
    restarts: int = 0
    nodes: str = ""
    elapsed: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def driver_command(python: str, sweep_file: Path, results: Path, *, retry_failed: bool = False) -> list[str]:
    """The sweep driver the job runs on its first node; the script appends ``--address HEAD``.

    The same command serves every start of the job: a requeued job finds the folder and resumes.
    """
    argv = [python, "-m", "sweeper", "launch", str(sweep_file), "--backend", "ray", "--results", str(results)]
    return [*argv, "--retry-failed"] if retry_failed else argv


def render_script(
    *,
    experiment: str,
    options: SlurmOptions,
    driver: list[str],
    workdir: Path,
    logs: Path,
    python: str,
    template: Path | None = None,
) -> str:
    """The sbatch script, as text. ``options`` must be resolved (see options.combine)."""
    text = (template or TEMPLATE).read_text(encoding="utf-8")
    ray_cpus = (
        f"--num-cpus={options.cpus_per_node}"
        if options.cpus_per_node
        else '"--num-cpus=${SLURM_CPUS_ON_NODE:-1}"'
    )
    gpus = options.gpus_per_node
    ray_gpus = f"--num-gpus={int(gpus.rsplit(':', 1)[-1])}" if gpus else ""
    values = {
        "directives": "\n".join(f"#SBATCH {d}" for d in directives(experiment, options)),
        "python": shlex.quote(python),
        "workdir": shlex.quote(str(workdir)),
        "logs": shlex.quote(str(logs)),
        "nodes": str(int(options.nodes or 1)),
        "ray_wait": str(int(options.ray_wait_s or 300)),
        "driver": " ".join(shlex.quote(a) for a in driver),
        "ray_cpus": ray_cpus,
        "ray_gpus": ray_gpus,
        "setup": "\n".join(options.setup or ()) or ": # none",
    }

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise SweeperError(
                f"{template or TEMPLATE}: unknown placeholder {{{{{key}}}}}; "
                f"known: {', '.join(sorted(values))}"
            )
        return values[key]

    return _PLACEHOLDER.sub(fill, text)


def directives(experiment: str, options: SlurmOptions) -> list[str]:
    """``#SBATCH`` options; options.parse_options checked each value (no spaces, no quotes)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", experiment):
        raise SweeperError(f"experiment name {experiment!r} cannot name a Slurm job")
    out = [f"--job-name=sweeper-{experiment}", f"--nodes={int(options.nodes or 1)}", "--ntasks-per-node=1"]
    if options.cpus_per_node:
        out.append(f"--cpus-per-task={int(options.cpus_per_node)}")
    for flag, value in (
        ("--gpus-per-node", options.gpus_per_node),
        ("--mem", options.mem_per_node),
        ("--partition", options.partition),
        ("--account", options.account),
        ("--qos", options.qos),
        ("--constraint", options.constraint),
        ("--time", options.time),
    ):
        if value:
            out.append(f"{flag}={value}")
    out += ["--output=slurm-%j.out", "--open-mode=append"]
    if options.requeue:
        out.append("--requeue")
        if options.time_s() is not None:
            out.append(f"--signal=B:USR1@{int(options.grace_s or 0)}")
    else:
        out.append("--no-requeue")
    out += list(options.sbatch or ())
    return out


def prepare(
    *,
    experiment: str,
    sweep_file: Path,
    results: Path,
    options: SlurmOptions,
    python: str | None = None,
    workdir: Path | None = None,
    retry_failed: bool = False,
) -> tuple[Path, str]:
    """Write the job script into ``<results>/<experiment>/slurm/``; return (folder, script)."""
    python = options.python or python or sys.executable
    folder = results / experiment
    logs = folder / SUBDIR
    logs.mkdir(parents=True, exist_ok=True)
    script = render_script(
        experiment=experiment,
        options=options,
        logs=logs,
        python=python,
        workdir=workdir or Path.cwd(),
        driver=driver_command(python, sweep_file, results, retry_failed=retry_failed),
    )
    (logs / "job.sbatch").write_text(script, encoding="utf-8")
    return folder, script


def submit(folder: Path) -> str:
    """``sbatch`` the script in ``folder/slurm``; return the job id.

    sbatch runs in the logs folder, so the relative ``--output`` lands there whatever the path.
    """
    logs = folder / SUBDIR
    out = _run(["sbatch", "--parsable", "job.sbatch"], cwd=logs)
    job_id = out.strip().split(";", 1)[0]
    if not job_id.isdigit():
        raise SweeperError(f"sbatch answered {out.strip()!r}, not a job id")
    return job_id


def state(job_id: str) -> JobState:
    """The job's state from ``scontrol`` (no accounting database needed), else ``sacct``."""
    try:
        out = _run(["scontrol", "show", "job", "--oneliner", job_id])
    except SweeperError:
        out = ""
    fields = dict(re.findall(r"(\w+)=(\S*)", out))
    if "JobState" in fields:
        return JobState(
            job_id,
            fields["JobState"],
            fields.get("Reason", ""),
            fields.get("ExitCode", ""),
            int(fields.get("Restarts", "0") or 0),
            fields.get("NodeList", ""),
            fields.get("RunTime", ""),
        )
    try:  # purged from the controller's memory: ask accounting, where there is one
        out = _run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode,NodeList,Elapsed"])
        line = out.strip().splitlines()[-1]
        st, code, nodes, elapsed = [*line.split("|"), "", "", "", ""][:4]
        return JobState(job_id, st.split()[0], "", code, 0, nodes, elapsed)
    except (SweeperError, IndexError):
        return JobState(job_id, "UNKNOWN")


def cancel(job_id: str, *, grace_s: float = 60.0) -> JobState:
    """Stop the job, keeping every finished run.

    A running job gets SIGINT in its batch shell, which stops the driver as Ctrl-C does (finished
    runs are written, the Ray steps end) and does not requeue; after ``grace_s`` a plain scancel.
    """
    now = state(job_id)
    if now.state == "RUNNING":
        _run(["scancel", "--batch", "--signal=INT", job_id])
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            now = state(job_id)
            if not now.active:
                return now
            time.sleep(0.5)
    if now.active:
        _run(["scancel", job_id])
        for _ in range(60):
            now = state(job_id)
            if not now.active:
                break
            time.sleep(0.5)
    return now


def _run(argv: list[str], *, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise SweeperError(
            f"{argv[0]} not found: Slurm's client commands are not on PATH",
        ) from None
    except subprocess.TimeoutExpired:
        raise SweeperError(f"{argv[0]} did not answer in 60 s; is slurmctld up?") from None
    if done.returncode != 0:
        raise SweeperError(
            f"{shlex.join(argv)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}"
        )
    return done.stdout


def options_dict(options: SlurmOptions) -> dict[str, object]:
    return {k: v for k, v in dataclasses.asdict(options).items() if v not in (None, ())}
