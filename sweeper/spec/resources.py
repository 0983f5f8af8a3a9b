"""What a run needs and uses: resources (per variable if asked), components, tracking, Slurm."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    WithJsonSchema,
    model_validator,
)

from sweeper.spec.block import Block, Target, When, identifier, rule
from sweeper.spec.experiment import TIME, ComponentKind


def _gpus(value: float) -> float:
    if value > 1 and value != int(value):
        raise rule(
            f"fractional GPUs above 1 ({value}) cannot be placed",
            "use a fraction below 1 (e.g. 0.25) or a whole number",
        )
    return value


def _bytes(value: Any) -> Any:
    """'4GB' / '512MiB' / '1e9' to bytes."""
    if not isinstance(value, str):
        return value
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([KMGT]?)(i?B)?\s*", value, re.IGNORECASE)
    if not m:
        raise rule(f"{value!r} is not an amount of memory", "write bytes, or e.g. 4GB or 512MiB")
    return (
        float(m.group(1))
        * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    )


Cpus = Annotated[float, Field(ge=0, le=1e6)]
Gpus = Annotated[float, Field(ge=0, le=1e4), AfterValidator(_gpus)]
Memory = Annotated[
    float, BeforeValidator(_bytes, json_schema_input_type=float | str), Field(ge=1, le=2.0**60)
]


def _case(amount: Any, name: str) -> Any:
    model = type(
        f"{name}Case",
        (Block,),
        {
            "__annotations__": {"when": When | None, "value": amount},
            "__doc__": "This amount for runs whose variables match when (without when: the default).",
            "__module__": __name__,
            "shape": (
                "{when: {variable: value}, value: N}",
                "write e.g. {when: {model: resnet50}, value: 1}",
            ),
            "when": Field(
                None, description="The variables' values this case is for; without it: the default."
            ),
            "value": Field(description="The amount runs of this case ask for."),
        },
    )

    def form(value: Any) -> str:
        return "@cases" if isinstance(value, list) else "@case" if isinstance(value, dict) else "@plain"

    return Annotated[
        Annotated[amount, Tag("@plain")]
        | Annotated[model, Tag("@case")]
        | Annotated[Annotated[list[model], Field(min_length=1)], Tag("@cases")],  # type: ignore[valid-type]
        Discriminator(form),
    ]


if TYPE_CHECKING:  # built at run time: three small case models
    CpuAmount: TypeAlias = Any
    GpuAmount: TypeAlias = Any
    MemoryAmount: TypeAlias = Any
else:
    CpuAmount, GpuAmount, MemoryAmount = _case(Cpus, "Cpu"), _case(Gpus, "Gpu"), _case(Memory, "Memory")


class Resources(Block):
    """What one run needs; amounts may depend on variables: [{when: {model: big}, value: 2}, {value: 1}]."""

    cpus: CpuAmount = Field(1.0, description="CPUs per run (default 1).")
    gpus: GpuAmount = Field(
        0.0, description="GPUs per run; fractions share a GPU (0.25 = four runs per GPU)."
    )
    memory: MemoryAmount | None = Field(None, description="Memory per run: bytes, or e.g. 4GB, 512MiB.")
    custom: dict[str, CpuAmount] = Field({}, description="Ray custom resources per run, name: amount.")


def _plain(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise rule("must be plain data (text, numbers, lists, mappings)", "write it as YAML data") from None
    return value


class Component(Block):
    """A declared input of every trial: one of path, job or value."""

    path: str | None = Field(
        None, description="A file or folder, relative to the sweep file's folder; hashed once."
    )
    job: Target | None = Field(
        None, description="module:function run once before the trials; its output folder."
    )
    value: Annotated[Any, AfterValidator(_plain)] = Field(
        None, description="A metadata record: any plain data."
    )
    kind: ComponentKind | None = Field(
        None, description="dataset (default for path and job), checkpoint, model, job, metadata."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Component:
        if len({"path", "job", "value"} & self.model_fields_set) != 1:
            raise rule(
                "needs exactly one of path, job, value",
                "e.g. {path: data/train.npz, kind: dataset}, {job: prep:make_features, kind: dataset} "
                "or {value: {source: UCI}, kind: metadata}",
            )
        return self


def _path_only(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


Components = dict[
    Annotated[str, identifier("component")],
    Annotated[Component, BeforeValidator(_path_only, json_schema_input_type=str | Component)],
]


class Mlflow(Block):
    """An MLflow tracking server the driver mirrors every trial to."""

    uri: Annotated[str, Field(min_length=1)] = Field(
        description="The tracking server, e.g. http://127.0.0.1:5000."
    )
    experiment: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="The MLflow experiment (default: this sweep's experiment name)."
    )


class Tracking(Block):
    """Where the driver mirrors what it records."""

    mlflow: Mlflow = Field(description="An MLflow tracking server.")


# ----------------------------------------------------------------------------------------- slurm
NAME = re.compile(r"^[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*$")  # partition, account, qos lists
MEM = re.compile(r"^\d+[KMGT]?$")
GPUS = re.compile(r"^(?:[A-Za-z0-9_.-]+:)?\d+$")  # 2, or a100:2
CONSTRAINT = re.compile(r"^[A-Za-z0-9_.:,|&!()\[\]*-]+$")
SBATCH_ARG = re.compile(r"^--[a-z][a-z-]*(?:=[A-Za-z0-9_.:,|&!()\[\]*/@%+=-]+)?$")
EXAMPLES = {
    "partition": "gpu",
    "account": "proj-123",
    "qos": "normal",
    "time": "2:00:00",
    "mem_per_node": "64G",
    "gpus_per_node": "4 or a100:4",
    "constraint": "a100",
    "python": "/home/me/venv/bin/python",
    "profile": "dev",
}


def _pattern(key: str, pattern: re.Pattern[str]) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and key in ("time", "gpus_per_node"):
            value = str(value)  # time: minutes, as sbatch reads a bare number
        if not isinstance(value, str) or not value.strip():
            raise rule(f"expected text, got {value!r}", f"write e.g. {key}: {EXAMPLES[key]}")
        value = value.strip()
        if not (key == "time" and value.upper() in ("UNLIMITED", "INFINITE")) and not pattern.match(value):
            raise rule(
                f"{value!r} is not a valid {key.replace('_', ' ')}",
                f"write e.g. {key}: {EXAMPLES[key]} (no spaces, quotes or shell characters)",
            )
        return str(value)

    return PlainValidator(check, json_schema_input_type=str | int)


def _lines(key: str) -> Any:
    def check(value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise rule(
                f"expected a list of text lines, got {value!r}",
                "write e.g. setup: [module load cuda/12.1, source ~/venv/bin/activate]",
            )
        for arg in items if key == "sbatch" else ():
            if not SBATCH_ARG.match(arg):
                raise rule(
                    f"{arg!r} is not a plain --option or --option=value",
                    "write long options without spaces or quotes, e.g. --exclusive or --reservation=gpu-week",
                )
        return tuple(items)

    return PlainValidator(check, json_schema_input_type=str | list[str])


def _one_line(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\0" in value:
        raise rule(f"expected a path or name on one line, got {value!r}", "give a plain path or name")
    return value.strip()


OneLine = Annotated[Any, PlainValidator(_one_line), WithJsonSchema({"type": "string"})]
Whole = Annotated[int, Field(ge=1)]


class Slurm(Block):
    """How `sweeper launch --slurm` asks for nodes; profile < this block < command-line flags."""

    nodes: Whole | None = Field(None, description="Nodes: a Ray head on the first, workers on the rest.")
    partition: Annotated[str, _pattern("partition", NAME)] | None = Field(
        None, description="The partition, or a comma-separated list of them."
    )
    time: Annotated[str, _pattern("time", TIME)] | None = Field(
        None, description="MM, HH:MM:SS, D-HH, D-HH:MM:SS or UNLIMITED."
    )
    cpus_per_node: Whole | None = Field(None, description="Also what each Ray node advertises.")
    gpus_per_node: Annotated[str, _pattern("gpus_per_node", GPUS)] | None = Field(
        None, description="2, or a100:2."
    )
    mem_per_node: Annotated[str, _pattern("mem_per_node", MEM)] | None = Field(None, description="e.g. 64G.")
    account: Annotated[str, _pattern("account", NAME)] | None = Field(
        None, description="The account the job is charged to."
    )
    qos: Annotated[str, _pattern("qos", NAME)] | None = Field(None, description="The quality of service.")
    constraint: Annotated[str, _pattern("constraint", CONSTRAINT)] | None = Field(
        None, description="Node features the job needs, e.g. a100 or a100|h100."
    )
    requeue: bool | None = Field(
        None, description="Resubmit on preemption or time limit; resume from the table."
    )
    grace_s: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Slurm signals the job this long before its end."
    )
    ray_wait_s: Whole | None = Field(None, description="How long to wait for every Ray node to join.")
    python: OneLine | None = Field(
        None, description="The interpreter on the cluster (default: the one submitting)."
    )
    setup: Annotated[tuple[str, ...], _lines("setup")] | None = Field(
        None, description="Shell lines run first (module load, venv activate)."
    )
    sbatch: Annotated[tuple[str, ...], _lines("sbatch")] | None = Field(
        None, description="More sbatch options, e.g. --exclusive."
    )
    profile: OneLine | None = Field(None, description="A file in cluster/slurm/ to start from.")


def underscores(value: Any) -> Any:
    """Slurm keys may be written as sbatch spells them (cpus-per-node)."""
    return {str(k).replace("-", "_"): v for k, v in value.items()} if isinstance(value, dict) else value
