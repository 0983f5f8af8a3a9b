"""Cluster submission: Slurm jobs and Ray Jobs that run the same sweep driver elsewhere."""
