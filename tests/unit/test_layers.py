"""The package's architecture, checked: the layers contract of pyproject.toml, and no import cycles."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]


def test_stages_only_import_the_stages_below_them(capsys: pytest.CaptureFixture[str]) -> None:
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out[-3000:]


def test_no_module_imports_itself_through_others() -> None:
    """Every import a -> b must not come back from b to a, lazy imports inside functions included."""
    graph = grimp.build_graph("sweeper")
    cycles = []
    for a in sorted(graph.modules):
        for b in sorted(graph.find_modules_directly_imported_by(a)):
            if a == b or a == "sweeper" or b == "sweeper" or b.startswith(a + ".") or a.startswith(b + "."):
                continue  # a package and its own modules (re-exports) are one unit
            back = graph.find_shortest_chain(importer=b, imported=a)
            if back is not None:
                cycles.append(" -> ".join((a, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
