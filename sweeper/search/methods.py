"""The search methods registry, as the search stage reads it; its one home is :mod:`sweeper.spec.methods`
(the spec checks ``search.method`` against it and sits below this stage)."""

from __future__ import annotations

from sweeper.spec.methods import METHODS, Method, MethodInfo, ProposerKind, is_enumerated

__all__ = ["METHODS", "Method", "MethodInfo", "ProposerKind", "is_enumerated"]
