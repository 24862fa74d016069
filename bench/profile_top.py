"""Summarise py-spy ``raw`` (collapsed) stacks: inclusive and self shares per function.

    .venv/bin/python bench/profile_top.py bench/out/load-profile/w1.txt [--only create_rfq]
        [--top 60]

``--only`` keeps the samples whose stack contains that text (a function, a file), so the
shares are of that part of the work. Line numbers are dropped, so one function is one row.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)")


def summarise(path: Path, only: str = "") -> tuple[int, Counter[str], Counter[str]]:
    """(samples kept, inclusive samples per function, self samples per function)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with path.open() as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if only not in stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_LINE.sub(")", f) for f in stack.split(";")]
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    return total, inclusive, own


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", type=Path)
    ap.add_argument("--only", default="")
    ap.add_argument("--top", type=int, default=60)
    args = ap.parse_args()
    total, inclusive, own = summarise(args.path, args.only)
    print(f"{total} samples")
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"--- {title}")
        for frame, n in counts.most_common(args.top):
            print(f"{100 * n / max(total, 1):5.1f}%  {frame[:150]}")


if __name__ == "__main__":
    main()
