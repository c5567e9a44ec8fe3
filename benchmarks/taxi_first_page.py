"""RLlib's first-page Taxi program, ours and RLlib's, each timed as a whole program.

``examples/taxi_ppo.py`` is RLlib's first-page example (PPO on Taxi-v3, 2 env runners, one
evaluation runner, 5 ``train()`` calls and one ``evaluate()``) with only its imports
changed. This script times that file as it stands, and RLlib's program made from the same
file by changing the imports back, so the two cannot drift apart. Each run is a fresh
``python`` process (imports, Ray's start, the build, training, evaluation and ``stop``);
the program's printout is discarded.

The two sides alternate. A run that passes ``--timeout`` seconds is stopped (SIGINT, so
that Ray shuts down its own processes, then SIGKILL) and recorded as "did not finish in N
s". A side that timed out is not run again: a program that waits for a CPU it cannot get
waits again, and each repeat would only cost another timeout.

    python benchmarks/taxi_first_page.py --out          # 3 runs a side, writes results/taxi_first_page.json
    python benchmarks/taxi_first_page.py --quick        # 1 run a side, 60 s timeout
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:  # python -m benchmarks.taxi_first_page, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/taxi_first_page.py: benchmarks/ is sys.path[0]
    import common

logger = logging.getLogger("benchmarks.taxi_first_page")

NAME = "taxi_first_page"
PROGRAM = Path(__file__).resolve().parent.parent / "examples" / "taxi_ppo.py"

# Our imports -> RLlib's, as on RLlib's first page.
RLLIB_IMPORTS = {
    "from marl_arena.algorithms import PPOConfig": "from ray.rllib.algorithms.ppo import PPOConfig",
    "from marl_arena.connectors import FlattenObservations":
        "from ray.rllib.connectors.env_to_module import FlattenObservations",
}
RUNS = {"full": 3, "quick": 1}
TIMEOUT_S = {"full": 300, "quick": 60}
SHUTDOWN_GRACE_S = 30


def rllib_program(ours: str) -> str:
    """RLlib's program: ours with the imports changed back (each must be found exactly once)."""
    for mine, theirs in RLLIB_IMPORTS.items():
        if ours.count(mine) != 1:
            raise ValueError(f"{PROGRAM} no longer has the line {mine!r} exactly once; update RLLIB_IMPORTS")
        ours = ours.replace(mine, theirs)
    return ours


def time_program(path: Path, timeout_s: float) -> dict[str, Any]:
    """Run ``python path`` in its own process group; its wall seconds, or that it timed out."""
    load = common.log_load(path.name)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True, text=True)
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop_process_group(process)
        logger.warning("%s did not finish in %.0f s", path.name, timeout_s)
        return {"finished": False, "wall_s": None, "timeout_s": timeout_s, "load_before": load}
    wall_s = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{path} exited with {process.returncode}:\n{stderr[-3000:]}")
    logger.info("%s finished in %.1f s", path.name, wall_s)
    return {"finished": True, "wall_s": wall_s, "timeout_s": timeout_s, "load_before": load}


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGINT first, so that the driver's ``ray.shutdown`` stops the Ray processes it started;
    SIGKILL for whatever is left after a grace period, so that no stalled run outlives its timing."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.communicate(timeout=SHUTDOWN_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread of the finished runs; how many runs finished."""
    finished = [r["wall_s"] for r in runs if r["finished"]]
    return {"runs": len(runs), "finished": len(finished), "all_finished": len(finished) == len(runs),
            "wall_s": common.spread(finished), "timeout_s": runs[0]["timeout_s"], "per_run": runs}


def ratio(sides: dict[str, Any]) -> float | None:
    """Our median wall time over RLlib's; None unless every run of both sides finished."""
    if "rllib" not in sides or not all(side["all_finished"] for side in sides.values()):
        return None
    return common.ratio(sides["marl_arena"]["wall_s"]["median"], sides["rllib"]["wall_s"]["median"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs a side (default 3, quick 1)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds a run may take (default 300, quick 60)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    mode = "quick" if args.quick else "full"
    runs, timeout_s = args.runs or RUNS[mode], args.timeout or TIMEOUT_S[mode]
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "command": common.command_line(argv), "machine": common.machine_info(),
        "program": str(PROGRAM.relative_to(PROGRAM.parent.parent)),
        "protocol": "wall seconds of the whole program in a fresh python process (imports, Ray start, build, 5 "
                    "train() calls, evaluate(), stop), sides alternating; median and min-max over the finished runs; "
                    "a side that passes the timeout is stopped and not run again",
        "sides": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="taxi_first_page_") as directory:
        rllib_path = Path(directory) / "taxi_ppo_rllib.py"
        rllib_path.write_text(rllib_program(PROGRAM.read_text()))
        programs = {"marl_arena": PROGRAM, **({} if args.no_rllib else {"rllib": rllib_path})}
        results: dict[str, list[dict[str, Any]]] = {side: [] for side in programs}
        for _ in range(runs):
            for side, path in programs.items():
                if all(r["finished"] for r in results[side]):
                    results[side].append(time_program(path, timeout_s))
    report["sides"] = {side: summarize(side_runs) for side, side_runs in results.items()}
    report["ratio_ours_over_rllib"] = ratio(report["sides"])
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
