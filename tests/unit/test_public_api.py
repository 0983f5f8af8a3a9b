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


def test_cli_help_does_not_import_heavy_modules():
    heavy = ("ray", "optuna", "pyarrow", "pandas", "matplotlib")
    code = (
        "import sys; from sweeper.cli import build_parser; build_parser(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
