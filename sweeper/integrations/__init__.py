"""Bridges to the tools researchers already run: MLflow tracking and optuna-dashboard.

They read what the engine records (the trial table is the truth) and mirror it elsewhere, so they sit
above every stage they read (report, analysis, engine, results) and below the API that starts them.
Each one imports its third-party library lazily and names the extra to install when it is missing.
"""
