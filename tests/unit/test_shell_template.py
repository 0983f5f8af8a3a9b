"""Where a shell: true template may put a placeholder (sweeper quotes each value as one word)."""

from __future__ import annotations

import pytest

from sweeper.errors import SweeperError
from sweeper.run.command import check_shell_template


@pytest.mark.parametrize(
    "template",
    [
        "train --lr {lr}",
        "train --lr={lr}",
        "train '--lr='{lr}",
        'cd "$HOME" && train {lr} | tee "$SWEEPER_TRIAL_DIR/log"',
        "echo $(echo {lr})",
        "echo 'it''s' {lr} \\' {lr}",
        "echo {{not a placeholder}} '{{x}}' {lr}",
    ],
)
def test_bare_placeholders_are_allowed(template: str) -> None:
    check_shell_template(template)


@pytest.mark.parametrize(
    ("template", "where"),
    [
        ("train '{lr}'", "single quotes"),
        ('train "{lr}"', "double quotes"),
        ("train --x='a b {lr}'", "single quotes"),
        ('train "--lr=\\"{lr}"', "double quotes"),
        ("train `echo {lr}`", "backticks"),
        ("train $'{lr}'", "$'...' quotes"),
        ("train \\{lr}", "right after a backslash"),
        ("cat <<EOF\n{lr}\nEOF", "here-document"),
    ],
)
def test_placeholders_inside_quotes_are_refused(template: str, where: str) -> None:
    with pytest.raises(SweeperError, match="placeholder \\{lr\\} is") as info:
        check_shell_template(template, "sweep.yaml")
    assert where in str(info.value) and str(info.value).startswith("sweep.yaml: command:")
