#!/usr/bin/env python3
"""A small astronomy-flavoured batch job: simulate a star field and count stars per magnitude bin.

Usage: star_counts.py SEED [N_STARS]
Prints where it ran, then a histogram of apparent magnitudes (a power law, like real counts).
"""

import math
import os
import random
import socket
import sys


def main() -> int:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    n_stars = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    rng = random.Random(seed)
    # log N(<m) grows ~0.6 per magnitude: draw magnitudes by inverse transform.
    low, high = 11.0, 21.0
    span = 10 ** (0.6 * (high - low)) - 1
    bins = [0] * int(high - low)
    for _ in range(n_stars):
        magnitude = low + math.log10(1 + rng.random() * span) / 0.6
        bins[min(int(magnitude - low), len(bins) - 1)] += 1
    scheduler_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("_CONDOR_JOB_AD") and "htcondor" or "local"
    print(f"star field seed={seed} stars={n_stars} host={socket.gethostname()} scheduler={scheduler_id}")
    top = max(bins)
    for index, count in enumerate(bins):
        bar = "#" * max(1, round(40 * count / top)) if count else ""
        print(f"  mag {low + index:4.1f}-{low + index + 1:4.1f} {count:6d} {bar}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
