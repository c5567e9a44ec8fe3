"""A league on external games: tic-tac-toe hosted by match-server processes, to >= 90% vs random from both seats.

Runs ``examples/tic_tac_toe_external_league.py``'s ``train`` once per seed (100-102: not
used for tuning; the settings are ``benchmarks/openspiel_selfplay.py``'s PPO ones and the
matchmaker was chosen on seed 0). Each run: one PPO main agent whose runner is a
``TcpServerEnvRunner``, two match-server processes playing every game over loopback TCP,
AlphaStar main-agent matchmaking over the agent and its snapshots. Every 5 iterations
(4,000 moves each) the greedy agent plays 200 fresh games against random moves from each
seat; a run reaches the target when win-or-draw >= 0.9 from both seats held 2 checks in a
row, and its figures are taken there. No peer runs: the in-process counterpart of this
task is ``openspiel_selfplay``'s tic-tac-toe row.

    python benchmarks/external_league.py --quick
    python benchmarks/external_league.py --out
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:  # python -m benchmarks.external_league, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/external_league.py: benchmarks/ is sys.path[0]
    import common

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import tic_tac_toe_external_league as example  # noqa: E402  (the example is the task)

logger = logging.getLogger("benchmarks.external_league")

NAME = "external_league"
SEEDS = [100, 101, 102]
MODES = {"full": {"seeds": SEEDS, "max_iterations": 100}, "quick": {"seeds": SEEDS[:1], "max_iterations": 20}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="league seeds (default 100 101 102)")
    args = parser.parse_args(argv)
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    settings = dict(MODES[mode])
    if args.seeds:
        settings["seeds"] = args.seeds
    report: dict[str, Any] = {
        "benchmark": NAME, "mode": mode, "machine": common.machine_info(),
        "settings": {**settings, "servers": 2, "eval_every": 5, "eval_games": 200, "consecutive": 2,
                     "target_win_or_draw": example.TARGET, "batch": 4000},
        "runs": [],
    }
    started = time.perf_counter()
    for seed in settings["seeds"]:
        load = common.log_load(f"seed {seed}")
        with tempfile.TemporaryDirectory(prefix="external_league_") as directory:
            run = example.train(directory, 2, settings["max_iterations"], 5, 200, seed=seed, consecutive=2,
                                log=logger.info)
        report["runs"].append({**run, "load_before": load})
    runs = report["runs"]
    report["summary"] = {
        "seeds_reached": f"{sum(r['reached_target'] for r in runs)}/{len(runs)}",
        "env_steps": common.spread([r["env_steps"] for r in runs]),
        "wall_s": common.spread([r["wall_s"] for r in runs]),
        "seat0_win_or_draw": common.spread([r["win_or_draw_vs_random"]["seat0"] for r in runs]),
        "seat1_win_or_draw": common.spread([r["win_or_draw_vs_random"]["seat1"] for r in runs]),
    }
    common.finish(report, NAME, args.out, started)
    return report


if __name__ == "__main__":
    main()
