"""The generated sbatch script: pinned by a golden file, and proven safe against hostile names.

The injection tests run the script's own assignments through a real bash and compare every value
byte for byte, with a marker file that any injected command would create.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from sweeper.errors import SpecError, SweeperError
from sweeper.spec import slurm as slurm_options
from sweeper.spec.slurm import SlurmOptions, combine, parse_options
from sweeper.submit import sbatch

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "slurm" / "reference.sbatch"
REPO = Path(__file__).resolve().parents[2]


def reference_script() -> str:
    options = combine(
        block=SlurmOptions(
            nodes=2,
            partition="gpu",
            time="2:00:00",
            cpus_per_node=8,
            gpus_per_node="a100:2",
            mem_per_node="64G",
            account="proj-1",
            setup=("module load cuda/12.1",),
        ),
        flags=None,
    )
    python = "/opt/venv/bin/python"
    return sbatch.render_script(
        experiment="mnist-lr",
        options=options,
        python=python,
        workdir=Path("/home/alice/project"),
        logs=Path("/scratch/alice/results/mnist-lr/slurm"),
        driver=sbatch.driver_command(
            python, Path("/home/alice/project/sweeps/mnist.yaml"), Path("/scratch/alice/results")
        ),
    )


def test_reference_script_matches_golden_file() -> None:
    text = reference_script()
    if os.environ.get("SWEEPER_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.is_file(), "run with SWEEPER_UPDATE_GOLDEN=1 once to write the golden file"
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the sbatch script changed; if on purpose, rerun with SWEEPER_UPDATE_GOLDEN=1 and review the diff"
    )


def test_reference_script_is_valid_bash_with_expected_directives() -> None:
    text = reference_script()
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    lines = [line for line in text.splitlines() if line.startswith("#SBATCH ")]
    assert lines == [
        "#SBATCH --job-name=sweeper-mnist-lr",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --gpus-per-node=a100:2",
        "#SBATCH --mem=64G",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj-1",
        "#SBATCH --time=2:00:00",
        "#SBATCH --output=slurm-%j.out",
        "#SBATCH --open-mode=append",
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@120",
    ]
    assert "ray_cpus=(--num-cpus=8)" in text and "ray_gpus=(--num-gpus=2)" in text
    assert "ray stop" not in text and "{{" not in text


def test_template_in_package_is_the_cluster_folder_template() -> None:
    assert sbatch.TEMPLATE.resolve() == (REPO / "cluster" / "slurm" / "sweep.sbatch").resolve()


NASTY = [
    "plain",
    "with space",
    "it's",
    'double"quote',
    "$(touch MARK)",
    "`touch MARK`",
    "x; touch MARK; y",
    "$HOME and ${PATH}",
    "new\nline; touch MARK",
    "star * and ~tilde",
    "back\\slash",
    "-leading-dash",
    "&& touch MARK ||",
    "ünïcode ✓",
]


@pytest.mark.parametrize("nasty", NASTY)
def test_nasty_values_reach_bash_as_plain_strings(tmp_path: Path, nasty: str) -> None:
    base = tmp_path / nasty.replace("/", "_")
    python = str(base / "bin" / "python")
    options = combine(block=SlurmOptions(nodes=1, python=python), flags=None)
    driver = sbatch.driver_command(python, base / "sweep file.yaml", base / "results")
    text = sbatch.render_script(
        experiment="exp",
        options=options,
        python=python,
        workdir=base,
        logs=base / "results" / "exp" / "slurm",
        driver=driver,
    )
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    # Run the script's assignment block for real and print what bash holds, NUL-separated.
    body = text.splitlines()
    start = body.index(next(line for line in body if line.startswith("python=")))
    end = body.index(next(line for line in body if line.startswith("ray_gpus=")))
    probe = "\n".join([*body[start : end + 1], 'printf "%s\\0" "$python" "$workdir" "$logs" "${driver[@]}"'])
    done = subprocess.run(["bash", "-c", probe], cwd=tmp_path, capture_output=True, check=True)
    got = done.stdout.decode().split("\0")[:-1]
    assert got == [python, str(base), str(base / "results" / "exp" / "slurm"), *driver]
    assert not (tmp_path / "MARK").exists()


def test_nasty_value_in_sbatch_directive_is_refused() -> None:
    for key, value in [
        ("partition", "gpu; touch MARK"),
        ("account", "a b"),
        ("time", "1:00 $(x)"),
        ("qos", "q\n#SBATCH --wrap=x"),
        ("mem_per_node", "64G'"),
        ("gpus_per_node", "a100:2 x"),
        ("constraint", "a100 `x`"),
    ]:
        with pytest.raises(SpecError, match=key):
            parse_options({key: value}, source="sweep.yaml")
    with pytest.raises(SpecError, match="sbatch"):
        parse_options({"sbatch": ["--exclusive", "--wrap=touch MARK"]}, source="sweep.yaml")
    with pytest.raises(SweeperError):
        sbatch.directives("bad name; x", SlurmOptions(nodes=1))


def test_option_errors_name_field_and_fix() -> None:
    with pytest.raises(SpecError) as err:
        parse_options({"node": 2}, source="sweep.yaml")
    assert "slurm.node" in str(err.value) and "did you mean 'nodes'" in str(err.value)
    with pytest.raises(SpecError, match="whole number"):
        parse_options({"nodes": 0}, source="sweep.yaml")
    with pytest.raises(SpecError, match="grace_s"):
        combine(block=SlurmOptions(time="1:00", grace_s=120), flags=None)
    with pytest.raises(SpecError, match="at most half the time limit"):
        combine(block=SlurmOptions(time="1", grace_s=40), flags=None)  # warned before Ray is up
    assert combine(block=SlurmOptions(time="2", grace_s=60), flags=None).grace_s == 60


def test_flags_beat_block_beat_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cluster" / "slurm"
    folder.mkdir(parents=True)
    (folder / "site.yaml").write_text("partition: p-profile\ntime: '1:00:00'\naccount: acct\n")
    monkeypatch.chdir(tmp_path)
    block = parse_options({"profile": "site", "partition": "p-block", "nodes": 3}, source="s.yaml")
    flags = parse_options({"partition": "p-flag"}, source="command line")
    out = combine(block=block, flags=flags)
    assert (out.partition, out.time, out.account, out.nodes) == ("p-flag", "1:00:00", "acct", 3)
    assert out.requeue is True and out.grace_s == 120  # defaults for what nobody set
    with pytest.raises(SpecError, match="no Slurm profile 'nope'"):
        combine(block=SlurmOptions(profile="nope"), flags=None)


def test_shipped_profiles_are_valid() -> None:
    for path in sorted((REPO / "cluster" / "slurm").glob("*.yaml")):
        opts = slurm_options.load_profile(str(path))
        text = sbatch.render_script(
            experiment="e",
            options=combine(block=opts, flags=None),
            python="python3",
            workdir=Path("/w"),
            logs=Path("/w/l"),
            driver=["python3", "-m", "sweeper"],
        )
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_time_formats() -> None:
    cases = {"90": 5400, "1:30": 90, "2:00:00": 7200, "1-0": 86400, "1-2:30": 95400, "1-00:00:01": 86401}
    for text, seconds in cases.items():
        assert SlurmOptions(time=text).time_s() == seconds, text
    assert SlurmOptions(time="UNLIMITED").time_s() is None


def test_setup_lines_are_kept_verbatim_as_code() -> None:
    setup = ("module load cuda/12.1", 'source "$HOME/venv/bin/activate"')
    opts = combine(block=SlurmOptions(setup=setup), flags=None)
    text = sbatch.render_script(
        experiment="e",
        options=opts,
        python="python3",
        workdir=Path("/w"),
        logs=Path("/w/l"),
        driver=["python3"],
    )
    assert 'module load cuda/12.1\nsource "$HOME/venv/bin/activate"\n' in text
    assert shlex.quote("/w") == "/w"


def test_sweep_file_slurm_block_is_validated_with_file_and_field(tmp_path: Path) -> None:
    from sweeper.spec.model import load_spec

    base = (
        "experiment: e\nobjective: m:f\nmetrics: [a: maximize]\n"
        "variables: {x: {choice: [1, 2]}}\nsearch: {method: grid}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(base + "slurm: {nodes: 2, time: '1:00:00', gpus-per-node: 4, setup: [module load x]}\n")
    assert load_spec(good).slurm == SlurmOptions(
        nodes=2, time="1:00:00", gpus_per_node="4", setup=("module load x",)
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "slurm: {nodes: 2, partition: 'gpu $(id)'}\n")
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    assert str(err.value).startswith(f"{bad}:6:19: slurm.partition: 'gpu $(id)' is not a valid partition")
