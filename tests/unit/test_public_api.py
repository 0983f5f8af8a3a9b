"""The public API is exactly what __all__ says, and importing sweeper stays light."""

from __future__ import annotations

import subprocess
import sys

import sweeper


def test_all_is_the_public_api():
    public = {name for name in dir(sweeper) if not name.startswith("_")} - {"annotations"}
    modules = {name for name in public if type(getattr(sweeper, name)).__name__ == "module"}
    assert set(sweeper.__all__) == public - modules
    for name in sweeper.__all__:
        assert getattr(sweeper, name) is not None


def test_all_is_pinned():
    # a name added to or dropped from the public API is a decision: change this list with it
    assert sweeper.__all__ == [
        "Experiment",
        "ObjectiveError",
        "SpecError",
        "SweepResult",
        "SweeperError",
        "TrialPruned",
        "current_trial",
        "launch",
        "load",
        "load_history",
        "load_spec",
        "summary",
        "verdict",
        "write_report",
    ]


def test_cli_help_does_not_import_heavy_modules():
    heavy = ("ray", "optuna", "pyarrow", "pandas", "matplotlib")
    code = (
        "import sys; from sweeper.cli import build_parser; build_parser(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
