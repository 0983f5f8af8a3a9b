"""A stand-alone training script, swept by sweeps/script.yaml without importing sweeper.

It fits y = 2.5 x - 1 by gradient descent and speaks the command-objective protocol: one JSON line
per epoch with a "step" key (the learning curve; the pruner may stop the script after any of them),
then a last JSON line with the final metrics. Plain text lines are fine in between. Run it by hand:
    python sweeps/train_script.py --lr 0.1 --epochs 20 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    xs = [rng.uniform(-2, 2) for _ in range(200)]
    data = [(x, 2.5 * x - 1 + rng.gauss(0, 0.1)) for x in xs]
    train, test = data[:160], data[160:]
    slope = intercept = 0.0
    mse = float("inf")
    print(f"training with lr={args.lr} in {os.environ.get('SWEEPER_TRIAL_DIR', '.')}")
    for epoch in range(args.epochs):
        g_slope = sum(2 * (slope * x + intercept - y) * x for x, y in train) / len(train)
        g_intercept = sum(2 * (slope * x + intercept - y) for x, y in train) / len(train)
        slope, intercept = slope - args.lr * g_slope, intercept - args.lr * g_intercept
        mse = sum((slope * x + intercept - y) ** 2 for x, y in test) / len(test)
        print(json.dumps({"step": epoch, "test_mse": mse}), flush=True)
    print(json.dumps({"test_mse": mse, "slope_error": abs(slope - 2.5)}))


if __name__ == "__main__":
    main()
