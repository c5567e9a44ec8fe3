"""The external-simulator example against in-process sampling: wall time to CartPole 450.

Runs ``examples/cartpole_external_tcp.py`` (a PPO server and 2 client processes with local
ONNX inference) and the same script with ``--local`` (PPO with an in-process runner), each
as a fresh process, in alternating pairs, and reads the JSON line each prints. ``ratio`` is
the external run's wall time over the in-process run's, per pair and as the ratio of the
medians (goal: <= 1.5). The example is not seeded: its pairs show the spread.

    python benchmarks/external_cartpole.py --quick   # 1 pair
    python benchmarks/external_cartpole.py --out     # 3 pairs
"""

from __future__ import annotations

import json
import logging
import pathlib
import subprocess
import sys
import time
from typing import Any

try:  # python -m benchmarks.external_cartpole, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/external_cartpole.py: benchmarks/ is sys.path[0]
    import common

logger = logging.getLogger("benchmarks.external_cartpole")

NAME = "external_cartpole"
EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "cartpole_external_tcp.py"
GOAL = 1.5
PAIRS = {"full": 3, "quick": 1}
SIDES = {"external": [], "in_process": ["--local"]}


def run_example(flags: list[str], max_s: float) -> dict[str, Any]:
    """One run of the example in a new process; its last stdout line is its JSON summary."""
    completed = subprocess.run([sys.executable, str(EXAMPLE), "--max-s", str(max_s), *flags],
                               capture_output=True, text=True, timeout=max_s + 120)
    if completed.returncode != 0:
        raise RuntimeError(f"{EXAMPLE.name} {' '.join(flags)} exited {completed.returncode}: "
                           f"{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--max-s", type=float, default=240.0, help="each run's time limit (the example's --max-s)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for pair in range(PAIRS[mode]):
        for side, flags in SIDES.items():
            load = common.log_load(f"{side} run {pair}")
            run = run_example(flags, args.max_s)
            logger.info("%s run %d: %s", side, pair, run)
            runs[side].append({**run, "load_before": load})
    wall = {side: common.spread([r["wall_s"] for r in side_runs]) for side, side_runs in runs.items()}
    ratio = common.ratio(wall["external"]["median"], wall["in_process"]["median"])
    report = {
        "benchmark": NAME, "mode": mode, "machine": common.machine_info(), "example": "examples/cartpole_external_tcp.py",
        "settings": {"clients": 2, "inference": "local (ONNX)", "target_return": 450, "max_s": args.max_s,
                     "pairs": PAIRS[mode]},
        "runs": runs, "wall_s": wall,
        "reached": {side: sum(bool(r["reached_target"]) for r in side_runs) for side, side_runs in runs.items()},
        "ratio_per_pair": [common.ratio(e["wall_s"], i["wall_s"]) for e, i in zip(runs["external"], runs["in_process"])],
        "ratio": ratio, "goal": GOAL,
        "goal_met": bool(ratio <= GOAL and all(r["reached_target"] for side_runs in runs.values() for r in side_runs)),
    }
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
