"""The configs in cluster/ are checked the way their tools would read them (no cloud needed).

Ray's cluster-launcher YAMLs go through Ray's own ``prepare_config`` + ``validate_config`` (defaults
merged, then the JSON schema Ray ships); the KubeRay RayJob through a structural check of the fields
the operator needs, and every command they run must name files and modules that exist here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_ray_cluster_launcher_configs_pass_rays_schema(name: str) -> None:
    import ray
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTER / "ray" / name).read_text())
    validate_config(prepare_config(config))
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # the head runs the driver, not trials
    workers = [t for n, t in types.items() if n != config["head_node_type"]]
    assert workers and all(w["min_workers"] == w["max_workers"] >= 1 for w in workers)
    setup = " ".join(config["setup_commands"])
    assert "$HOME/sweeper[cluster]" in setup and f"ray[default]=={ray.__version__}" in setup
    assert config["file_mounts"] == {"~/sweeper": "."}
    assert "--dashboard-host=0.0.0.0" in " ".join(config["head_start_ray_commands"])


def test_ray_schema_rejects_a_broken_config() -> None:
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTER / "ray" / "aws.yaml").read_text())
    config["available_node_types"]["gpu_worker"]["min_wokers"] = 1  # a typo the schema must catch
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))


def test_kuberay_rayjob_manifest() -> None:
    import ray

    job = yaml.safe_load((CLUSTER / "k8s" / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", job["metadata"]["name"])  # DNS-1123
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:4] == ["python", "-m", "sweeper", "job"]
    sweep = argv[4]
    assert sweep.startswith("/home/ray/sweeper/")
    assert (REPO / sweep.removeprefix("/home/ray/sweeper/")).is_file()  # it ships in the image
    assert argv[5] == "--results" and re.match(r"^(s3|gs)://", argv[6])
    env = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    assert env["RAY_JOB_STOP_SIGNAL"] == "SIGINT"
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    containers = head["template"]["spec"]["containers"]
    assert containers[0]["image"] and 8265 in [p["containerPort"] for p in containers[0]["ports"]]
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        worker = group["template"]["spec"]["containers"][0]
        assert worker["image"] == containers[0]["image"]
        assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # All string values in rayStartParams: KubeRay's CRD declares them as strings.
    for params in [head["rayStartParams"], *(g["rayStartParams"] for g in cluster["workerGroupSpecs"])]:
        assert all(isinstance(v, str) for v in params.values())


def test_dockerfile_matches_ray_version_and_installs_this_checkout() -> None:
    import ray

    text = (CLUSTER / "k8s" / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{ray.__version__}-" in text
    assert 'pip install --no-cache-dir -e "/home/ray/sweeper[cluster]"' in text


def test_cluster_readme_names_every_config() -> None:
    text = (CLUSTER / "README.md").read_text()
    for path in [
        "slurm/dev-cluster.sh",
        "slurm/sweep.sbatch",
        "slurm/dev.yaml",
        "slurm/gpu.yaml",
        "ray/aws.yaml",
        "ray/gcp.yaml",
        "k8s/rayjob.yaml",
        "k8s/Dockerfile",
    ]:
        assert (CLUSTER / path).is_file(), path
        assert path in text, f"cluster/README.md does not mention {path}"


def test_dev_slurm_stop_survives_daemons_that_delete_their_pid_files(tmp_path: Path) -> None:
    """Daemons delete their own PID file as they exit, racing stop's checks; stop must still end them
    and exit 0 (a vanished file once ended the script under ``set -e`` and failed a CI whose tests
    had passed). No root needed: the "daemons" are our own children."""
    run = tmp_path / "run"
    run.mkdir()
    daemon = 'trap \'rm -f "$0"; sleep 0.2; exit 0\' TERM; echo $$ > "$0"; while :; do sleep 0.05; done'
    pids = []
    for node in ["n1", "n2", "n3"]:
        pidfile = run / f"slurmd-{node}.pid"
        proc = subprocess.Popen(["bash", "-c", daemon, str(pidfile)])
        pids.append(proc)
    (run / "slurmctld.pid").write_text("999999999\n")  # stale: no such process
    for _ in range(100):
        if all((run / f"slurmd-{n}.pid").exists() for n in ["n1", "n2", "n3"]):
            break
        time.sleep(0.05)
    result = subprocess.run(
        ["bash", str(CLUSTER / "slurm" / "dev-cluster.sh"), "stop"],
        env={**os.environ, "SWEEPER_SLURM_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "stopped" in result.stderr
    for proc in pids:
        assert proc.wait(timeout=10) == 0
    assert list(run.iterdir()) == []
