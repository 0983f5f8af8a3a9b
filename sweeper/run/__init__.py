"""What executes one run on a worker: the wire types, Python and command objectives, the trial runtime."""
