"""The results folder's schema, as the results stage reads it; its one home is :mod:`sweeper.spec.columns`
(the spec refuses names that would shadow a column, and sits below this stage)."""

from __future__ import annotations

from sweeper.spec.columns import (
    COLUMNS,
    COMPONENT_KINDS,
    EXPERIMENT_RE,
    HISTORY_COLUMNS,
    RESERVED,
    TRIAL_KEYS,
    TRIAL_RUN,
    TRIAL_STAGE,
    ComponentKind,
    Status,
    run_artifacts,
    safe_experiment_name,
)

__all__ = [
    "COLUMNS",
    "COMPONENT_KINDS",
    "EXPERIMENT_RE",
    "HISTORY_COLUMNS",
    "RESERVED",
    "TRIAL_KEYS",
    "TRIAL_RUN",
    "TRIAL_STAGE",
    "ComponentKind",
    "Status",
    "run_artifacts",
    "safe_experiment_name",
]
