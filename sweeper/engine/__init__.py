"""The driver loop: fill slots, expand trials into replicates, stream results, resume, progress, Ctrl-C."""
