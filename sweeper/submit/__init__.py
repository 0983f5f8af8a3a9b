"""Cluster submission as a Python API: Slurm jobs and Ray Jobs that run the same sweep driver elsewhere.

``slurm(...)`` and ``ray_job(...)`` submit and return a :class:`Submitted`; ``wait`` follows one to
its end, ``cancel`` stops the job behind a results folder, ``status_line`` describes it. The modules
below are the mechanics: ``sbatch`` (script, sbatch, squeue/sacct, scancel), ``rayjobs`` (the Jobs
API), ``record`` (``submission.json``), ``follow`` (the progress line from a remote trial table) and
``job_entry`` (what a Ray Job runs).
"""

from __future__ import annotations

from sweeper.submit.jobs import Ended, Submitted, cancel, job_name, ray_job, slurm, status_line, wait

__all__ = ["Ended", "Submitted", "cancel", "job_name", "ray_job", "slurm", "status_line", "wait"]
