"""In a real Jupyter kernel: launch shows a live bar, and the result and the verdict render as HTML."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs nbformat (pip install -e '.[test]')")
nbclient = pytest.importorskip("nbclient", reason="needs nbclient and ipykernel (pip install -e '.[test]')")

CELLS = [
    "import sweeper\nfrom tests.conftest import sweep_spec\n"
    "spec = sweep_spec(search={'method': 'grid'}, variables={'x': {'choice': [0.0, 0.5, 1.0]},"
    " 'y': {'choice': [2]}, 'kind': {'choice': ['a', 'b']}}, replicates=3,"
    " compare={'variable': 'kind', 'treatment': 'a', 'baseline': 'b'})",
    "result = sweeper.launch(spec, results=RESULTS, backend='local')\nresult",
    "sweeper.verdict(result.path)",
    "def own(x, y, kind, seed):\n    return (x - 0.5) ** 2 + y\n"
    "mine = sweeper.launch({**spec, 'experiment': 'own', 'objective': own}, results=RESULTS,"
    " backend='local', progress=False)\n(mine.spec.objective, mine.stats.counts)",
]


def _html(output):
    return output.get("data", {}).get("text/html", "")


def test_launch_in_a_kernel_shows_a_bar_and_html_cards(tmp_path):
    from tests.conftest import REPO

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"RESULTS = {str(tmp_path)!r}\n" + CELLS[0])]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in CELLS[1:]]
    client = nbclient.NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()

    launch_out = nb.cells[1].outputs
    bars = [_html(o) for o in launch_out if o["output_type"] == "display_data"]
    assert len(bars) == 1, launch_out  # one bar, updated in place, not a line per update
    assert '<progress value="18" max="18"' in bars[0]  # 6 trials x 3 replicates, the final state
    card = next(_html(o) for o in launch_out if o["output_type"] == "execute_result")
    assert "<b>t</b>: 6 trials, 18 runs (18 complete)" in card
    assert "best: trial" in card and 'aria-label="optimisation history"' in card
    plain = next(o for o in launch_out if o["output_type"] == "execute_result")["data"]["text/plain"]
    assert plain.startswith("<SweepResult t: 6 trials, 18 runs (18 complete); best loss=") and plain.endswith(
        f"; path={str(tmp_path / 't')!r}>"
    )  # one line in a terminal, not the spec in full

    verdict = _html(next(o for o in nb.cells[2].outputs if o["output_type"] == "execute_result"))
    assert "Verdict: supported" in verdict  # kind a is 0.1 lower in loss on every seed
    assert 'aria-label="effect and interval"' in verdict
    plain = next(o for o in nb.cells[2].outputs if o["output_type"] == "execute_result")["data"]["text/plain"]
    assert plain.startswith("<Verdict: supported at") and "\n" not in plain

    own = next(o for o in nb.cells[3].outputs if o["output_type"] == "execute_result")["data"]["text/plain"]
    assert own == "('__main__:own', {'complete': 18})"  # the notebook's own function, by its name
