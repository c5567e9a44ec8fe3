"""A CNN against the default MLP in the same connect_four self-play league, at the same wall-time budget.

The league is ``connect_four_selfplay``'s (APPO trainer, one main agent, its snapshots and a
uniform random bot by PFSP with a fixed random share, ``open_spiel:connect_four`` with the
seat one-hot), which the plugin now hands over as 6x7 planes (HxWxC: the game's three
planes and two constant seat planes). Only the model differs:

* ``mlp``: ``connect_four_selfplay``'s 256x256 MLP over the flattened planes;
* ``cnn``: ``conv_filters`` ``CNN_FILTERS`` ("same" padding, so every layer sees the whole
  6x7 board) then a 128-unit MLP, one trunk shared by policy and value (``vf_share_layers``).

Each model trains for ``BUDGETS`` seconds of training wall time per seed (seeds 100-102;
nothing was tuned on them), then its greedy policy (``ModulePolicy``) plays ``GAMES`` games
per seat against OpenSpiel's uniform random player and ``MCTS_GAMES`` per seat against
OpenSpiel's MCTS with ``MCTS_SIMULATIONS`` simulations (``pyspiel.MCTSBot``, the C++ UCT of
``open_spiel.python.algorithms.mcts`` with random rollouts, a fresh bot seed every game).
After both models of a seed have trained, they meet head to head (``H2H_GAMES`` per seat): each
model's greedy policy against the other's sampled one, both ways round, so that a difference
between the two is not hidden when neither beats MCTS. The two models of a seed run one after
the other, or with ``--jobs 2`` at once, each in its own process on its own core; either way
both see the same machine load. The budget is the issue's limit, 15 min of training per run.

    python benchmarks/connect_four_cnn.py --quick             # one seed, 60 s per model
    python benchmarks/connect_four_cnn.py --out --jobs 2      # writes results/connect_four_cnn.json
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from typing import Any

try:  # python -m benchmarks.connect_four_cnn, from the repository root
    from benchmarks import common, connect_four_selfplay as selfplay
except ImportError:  # python benchmarks/connect_four_cnn.py: benchmarks/ is sys.path[0]
    import common
    import connect_four_selfplay as selfplay

from marl_arena.league.league import League
from marl_arena_envs.openspiel import ModulePolicy, play_both_seats_against, play_both_seats_against_random

logger = logging.getLogger("benchmarks.connect_four_cnn")

NAME = "connect_four_cnn"
GAME = selfplay.GAME
MAIN = selfplay.MAIN
GAMES = 200
MCTS_GAMES = 50
MCTS_SIMULATIONS = 200
H2H_GAMES = 100
BUDGETS = {"full": 900, "quick": 60}
SEEDS = {"full": [100, 101, 102], "quick": [100]}
CNN_FILTERS = [[32, 3, 1], [32, 3, 1]]
MODELS: dict[str, dict[str, Any]] = {
    "cnn": {"conv_filters": CNN_FILTERS, "fcnet_hiddens": [128], "vf_share_layers": True},
    "mlp": {"fcnet_hiddens": selfplay.HIDDENS},
}
SEATS = ("seat0", "seat1")


def evaluate(league: League, seed: int) -> dict[str, Any]:
    """The main agent's greedy policy against uniform random and against MCTS, from both seats."""
    policy = ModulePolicy.from_algorithm(league.trainers[MAIN], module_id=MAIN, greedy=True)
    mcts = {"bot": "mcts", "max_simulations": MCTS_SIMULATIONS}
    return {"vs_random": play_both_seats_against_random(policy, GAME, GAMES, seed, selfplay.ENV_CONFIG),
            "vs_mcts": play_both_seats_against(policy, GAME, MCTS_GAMES, mcts, seed, selfplay.ENV_CONFIG)}


def run(model: str, seed: int, budget_s: float) -> tuple[dict[str, Any], Any]:
    """Train the league with ``model`` for ``budget_s`` seconds of training, then evaluate the main agent.

    Returns the figures and the trained module (for the head-to-head games)."""
    with tempfile.TemporaryDirectory(prefix="connect_four_cnn_") as directory:
        config = selfplay.league_config(directory, seed)
        config.trainer_config.rl_module(model_config=MODELS[model])
        league = League(config)
        train_s = 0.0
        try:
            while train_s < budget_s:
                start = time.perf_counter()
                league.run(1)
                train_s += time.perf_counter() - start
            steps = league.store.metrics(MAIN)[-1][1]["env_steps"]
            start = time.perf_counter()
            scores = evaluate(league, 20_000 + seed)
            eval_s = time.perf_counter() - start
            players = len(league.players)
            module = league.trainers[MAIN].get_module(MAIN)
        finally:
            league.stop()
    result = {"model": model, "seed": seed, "train_s": round(train_s, 1), "iterations": league.iteration,
              "env_steps": steps, "players_at_end": players, "eval_s": round(eval_s, 1), **scores}
    for opponent in ("vs_random", "vs_mcts"):
        result[f"{opponent}_win_both_seats"] = sum(scores[opponent][s]["win"] for s in SEATS) / 2
    logger.info("%s seed %d: %s", model, seed, {k: v for k, v in result.items() if k.endswith("both_seats")})
    return result, module


def head_to_head(modules: dict[str, Any], seed: int) -> dict[str, float]:
    """Each model's greedy policy against the other's sampled policy, both seats: its mean win rate."""
    out = {}
    for model, other in (("cnn", "mlp"), ("mlp", "cnn")):
        greedy = ModulePolicy(GAME, modules[model], greedy=True, **selfplay.ENV_CONFIG)
        sampled = ModulePolicy(GAME, modules[other], **selfplay.ENV_CONFIG)
        both = play_both_seats_against(greedy, GAME, H2H_GAMES, sampled, seed, selfplay.ENV_CONFIG)
        out[f"{model}_greedy_vs_{other}_sampled_win"] = sum(both[s]["win"] for s in SEATS) / 2
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians (min-max) over seeds of every win rate, the env steps and the iterations."""
    out: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
    for opponent in ("vs_random", "vs_mcts"):
        for seat in SEATS:
            out[f"{opponent}_{seat}_win"] = common.spread([r[opponent][seat]["win"] for r in runs])
        out[f"{opponent}_win_both_seats"] = common.spread([r[f"{opponent}_win_both_seats"] for r in runs])
    out["env_steps"] = common.spread([r["env_steps"] for r in runs])
    out["iterations"] = common.spread([r["iterations"] for r in runs])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, choices=[1, 2],
                        help="2: train a seed's two models at once, each in its own process")
    args = parser.parse_args(argv)  # --no-rllib is accepted and changes nothing: no RLlib side here
    common.configure_logging(args.verbose)
    common.set_torch_threads()
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": NAME, "command": common.command_line(argv), "seeds": SEEDS[mode],
        "machine": common.machine_info(), "settings": selfplay.SETTINGS, "models": MODELS,
        "env_config": selfplay.ENV_CONFIG, "budget_s_per_model_and_seed": BUDGETS[mode],
        "jobs": args.jobs,
        "budget_note": f"{BUDGETS[mode]} s of training per model and seed (the issue allows up to 900 s); "
                       + ("a seed's two models trained at once, one process each" if args.jobs == 2
                          else "a seed's two models trained one after the other"),
        "evaluation": f"greedy main agent after the budget: {GAMES} games per seat vs uniform random, "
                      f"{MCTS_GAMES} games per seat vs pyspiel.MCTSBot ({MCTS_SIMULATIONS} simulations, "
                      "random rollouts, uct_c 2)",
    }
    runs: dict[str, list[dict[str, Any]]] = {model: [] for model in MODELS}
    meetings = []
    for seed in SEEDS[mode]:
        report["machine"][f"load_before_seed_{seed}"] = common.log_load(f"seed {seed}")
        trained = common.map_runs(functools.partial(run, seed=seed, budget_s=BUDGETS[mode]), list(MODELS), args.jobs)
        modules = {}
        for model, (result, modules[model]) in zip(MODELS, trained):
            runs[model].append(result)
        meetings.append({"seed": seed, **head_to_head(modules, 30_000 + seed)})
        logger.info("head to head, seed %d: %s", seed, meetings[-1])
    report["runs"] = runs
    report["summary"] = {model: summary(model_runs) for model, model_runs in runs.items()}
    report["head_to_head"] = {"runs": meetings, "games_per_seat": H2H_GAMES, **{
        key: common.spread([m[key] for m in meetings]) for key in meetings[0] if key != "seed"}}
    cnn, mlp = report["summary"]["cnn"], report["summary"]["mlp"]
    h2h = report["head_to_head"]
    report["cnn_stronger"] = {
        **{opponent: cnn[f"{opponent}_win_both_seats"]["median"] > mlp[f"{opponent}_win_both_seats"]["median"]
           for opponent in ("vs_random", "vs_mcts")},
        "head_to_head": h2h["cnn_greedy_vs_mlp_sampled_win"]["median"] > h2h["mlp_greedy_vs_cnn_sampled_win"]["median"],
    }
    common.finish(report, NAME, args.out, started)


if __name__ == "__main__":
    main()
