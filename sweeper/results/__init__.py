"""Every file of the results folder: the trial table, history, components, lock, status, trial values."""
