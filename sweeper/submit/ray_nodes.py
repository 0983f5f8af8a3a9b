"""Wait until a Ray cluster has N live nodes, asking its GCS directly (no driver, no dashboard).

The Slurm job script runs ``python -m sweeper.submit.ray_nodes ADDRESS N TIMEOUT_S`` between
starting the Ray nodes and starting the sweep driver, so that the driver's first ``ray.init`` sees
the whole allocation and the search fills every slot from the start.
"""

from __future__ import annotations

import sys
import time


def alive_nodes(address: str, *, timeout_s: float = 5.0) -> int:
    """Live nodes the GCS at ``address`` knows; 0 while it does not answer yet."""
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    try:
        infos = GcsClient(address=address).get_all_node_info(timeout=timeout_s)
    except Exception:  # the GCS is still starting, or gone: callers poll
        return 0
    return sum(1 for info in infos.values() if info.state == 0)  # GcsNodeInfo.ALIVE


def wait_for_nodes(address: str, count: int, timeout_s: float) -> int:
    """Poll until ``count`` nodes are alive or ``timeout_s`` passed; return the last count seen."""
    deadline = time.monotonic() + timeout_s
    seen = 0
    while True:
        seen = alive_nodes(address, timeout_s=min(5.0, max(0.5, deadline - time.monotonic())))
        if seen >= count or time.monotonic() >= deadline:
            return seen
        time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m sweeper.submit.ray_nodes ADDRESS NODES TIMEOUT_S", file=sys.stderr)
        return 2
    address, count, timeout_s = args[0], int(args[1]), float(args[2])
    t0 = time.monotonic()
    seen = wait_for_nodes(address, count, timeout_s)
    took = time.monotonic() - t0
    if seen < count:
        print(
            f"sweeper: only {seen} of {count} Ray nodes alive at {address} after {took:.0f} s",
            file=sys.stderr,
        )
        return 1
    print(f"sweeper: {seen} Ray node(s) alive at {address} after {took:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
