"""The variable space and how it is explored: seeds, streamed points, the Optuna searcher, pruners."""
