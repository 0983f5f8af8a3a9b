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


def test_type_checkers_see_each_public_name_from_where_it_is_imported():
    """The lazy table, the imports type checkers read and __all__ (a literal, so that mypy users see
    the names as exported) name the same things."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(sweeper))
    block = next(n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))
    seen = {a.name: i.module for i in block.body if isinstance(i, ast.ImportFrom) for a in i.names}
    assert seen == sweeper._HOME
    assert sweeper.__all__ == sorted(sweeper._HOME)


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
