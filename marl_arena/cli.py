"""The ``marl-arena`` command line: train an algorithm, evaluate a checkpoint, run and inspect leagues."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import ipaddress
import json
import logging
import math
import os
import pathlib
import subprocess
import sys
from typing import Any, Sequence

from tqdm import tqdm

from marl_arena.algorithms.registry import ALGORITHM_NAMES, config_for

logger = logging.getLogger("marl_arena.cli")


def parse_key_values(pairs: Sequence[str], flag: str) -> dict[str, Any]:
    """``key=value`` pairs given to the command-line flag ``flag`` (named in the error); values
    are JSON where they parse as JSON, else strings."""
    overrides = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} expects key=value, got {pair!r}.")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


def _build_config(args: argparse.Namespace):
    config = config_for(args.algo).environment(args.env, env_config=parse_key_values(args.env_config, "--env-config"))
    config.env_runners(num_env_runners=args.num_env_runners, num_envs_per_env_runner=args.num_envs_per_env_runner)
    config.debugging(seed=args.seed)
    if args.fcnet_hiddens:
        config.rl_module(model_config={"fcnet_hiddens": args.fcnet_hiddens})
    for key, value in parse_key_values(args.config, "--config").items():
        if not hasattr(config, key):
            raise SystemExit(f"--config {key}=...: {type(config).__name__} has no field {key!r}.")
        setattr(config, key, value)
    return config


def _summary(result: dict[str, Any]) -> str:
    runners = result["env_runners"]
    line = (
        f"iter {result['training_iteration']:4d}  return {runners['episode_return_mean']:9.2f}  "
        f"len {runners['episode_len_mean']:7.1f}  steps {result['num_env_steps_sampled_lifetime']:>9,d}  "
        f"{result['env_steps_per_s']:8.0f} steps/s  {result['time_this_iter_s']:5.2f}s"
    )
    if "evaluation" in result:
        line += f"  eval {result['evaluation']['env_runners']['episode_return_mean']:.2f}"
    return line


def _progress_bar(total: int | None, description: str, quiet: bool) -> tqdm:
    """A progress bar on a terminal only: in a pipe or a log file its redraws would garble the lines."""
    return tqdm(total=total, unit="iter", desc=description, disable=True if quiet else None)


def train(args: argparse.Namespace) -> int:
    config = _build_config(args)
    algo = config.build_algo()
    total = args.stop_iters if args.stop_iters else None
    reached = False
    checkpoint_dir = pathlib.Path(args.checkpoint_dir) if args.checkpoint_dir else None
    try:
        with _progress_bar(total, f"{args.algo.upper()} {args.env}", args.quiet) as bar:
            while True:
                result = algo.train()
                bar.update(1)
                bar.set_postfix(ret=f"{result['env_runners']['episode_return_mean']:.1f}")
                tqdm.write(_summary(result), file=sys.stdout)
                if checkpoint_dir and result["training_iteration"] % args.checkpoint_freq == 0:
                    algo.save_to_path(str(checkpoint_dir / f"iter_{result['training_iteration']:06d}"))
                mean = result["env_runners"]["episode_return_mean"]
                if args.stop_reward is not None and not math.isnan(mean) and mean >= args.stop_reward:
                    reached = True
                    break
                if args.stop_iters and result["training_iteration"] >= args.stop_iters:
                    break
                if args.stop_timesteps and result["num_env_steps_sampled_lifetime"] >= args.stop_timesteps:
                    break
        evaluation = algo.evaluate()["env_runners"]
        print(f"evaluation over {evaluation['num_episodes']} episodes: return {evaluation['episode_return_mean']:.2f}")
        if checkpoint_dir:
            final = algo.save_to_path(str(checkpoint_dir / "final"))
            print(f"checkpoint: {final}")
    finally:
        algo.stop()
    if args.stop_reward is not None and not reached:
        print(f"stop reward {args.stop_reward} not reached", file=sys.stderr)
        return 1
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from marl_arena.algorithms.algorithm import Algorithm

    algo = Algorithm.from_checkpoint(args.checkpoint)
    try:
        algo.config.evaluation_duration = args.episodes
        evaluation = algo.evaluate()["env_runners"]
    finally:
        algo.stop()
    print(json.dumps({k: evaluation[k] for k in ("episode_return_mean", "episode_return_min",
                                                  "episode_return_max", "episode_len_mean", "num_episodes")}))
    return 0


def _league_module(name_or_script: str):
    """A ready-made league by name (``marl_arena_leagues.<name>``) or a script path."""
    if name_or_script.endswith(".py"):
        path = pathlib.Path(name_or_script)
        if not path.exists():
            raise ValueError(f"League script {path} does not exist.")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        from marl_arena_leagues import NAMES, TEAM_NAMES

        if name_or_script not in NAMES + TEAM_NAMES:
            raise ValueError(f"Unknown league {name_or_script!r}; ready-made leagues: {', '.join(NAMES + TEAM_NAMES)}, "
                             "or give a script path ending in .py.")
        module = importlib.import_module(f"marl_arena_leagues.{name_or_script}")
    for attribute in ("make_config", "ITERATIONS"):
        if not hasattr(module, attribute):
            raise ValueError(f"League script {name_or_script} must define {attribute}.")
    return module


def league_run(args: argparse.Namespace) -> int:
    from marl_arena.league.leaderboard import format_leaderboard

    module = _league_module(args.league)
    directory = args.dir or str(pathlib.Path("league_runs") / pathlib.Path(args.league).stem)
    iterations = args.iterations or module.ITERATIONS
    config = module.make_config(directory)
    if args.address is not None:
        config.cluster(address=args.address)
    if args.env_runners is not None:
        for trainer in (config.trainer_config, *config.side_trainers.values()):
            trainer.env_runners(num_env_runners=args.env_runners)
    league = config.build()
    print(f"league {args.league} in {directory} (resuming at iteration {league.iteration})"
          if league.iteration else f"league {args.league} in {directory}")

    def show(current, summary: dict[str, Any]) -> None:
        bar.update(1)
        for player, info in summary["players"].items():
            snapshot = f"  froze {info['snapshot']}" if info["snapshot"] else ""
            tqdm.write(f"iter {summary['iteration']:4d}  {player:<18} elo {info['elo']:7.1f}  "
                       f"matches {info['matches']:5d}{snapshot}", file=sys.stdout)
        last = summary["iteration"] == league_end
        if summary["iteration"] % args.leaderboard_every == 0 and not last:  # the last one is printed in full below
            tqdm.write(format_leaderboard(current.leaderboard(), limit=10), file=sys.stdout)

    league_end = league.iteration + iterations
    try:
        with _progress_bar(iterations, f"league {args.league}", args.quiet) as bar:
            league.run(iterations, show)
        if league.layout is not None and not league.layout.symmetric:  # a predator is only rated against prey
            for side in league.layout.sides:
                print(f"side {side}:\n{format_leaderboard(league.leaderboard(side))}")
        else:
            print(format_leaderboard(league.leaderboard()))
        print(f"{league.store.count_matches()} matches stored in {directory}")
    finally:
        league.stop()
    return 0


def league_status(args: argparse.Namespace) -> int:
    from marl_arena.league.leaderboard import format_leaderboard, store_leaderboard
    from marl_arena.league.store import LeagueStore

    store = LeagueStore(args.dir, read_only=True)
    try:
        rows = store_leaderboard(store)
        teams = (store.game() or {}).get("teams")
        if teams and not teams["symmetric"]:  # a team league with asymmetric sides: a leaderboard per side
            sides = {row["player"]: store.player_metadata(row["player"]).get("side") for row in rows}
            for side in teams["sides"]:
                print(f"side {side}:\n{format_leaderboard([r for r in rows if sides[r['player']] == side])}")
        else:
            print(format_leaderboard(rows))
        print(f"{store.count_matches()} matches")
    finally:
        store.close()
    return 0


def league_export(args: argparse.Namespace) -> int:
    """Write a stored league's games as offline episodes (Parquet), e.g. to pre-train a player by BC."""
    from marl_arena.offline.league_export import export_league

    players = args.players.split(",") if args.players else None
    summary = export_league(args.dir, args.out, players=players, module_id=args.module_id)
    print(f"{summary.games} games, {summary.rows} rows in {len(summary.files)} file(s) under {args.out}"
          + (f"; {summary.skipped_without_moves} match(es) without stored moves skipped"
             if summary.skipped_without_moves else ""))
    return 0


def dashboard(args: argparse.Namespace) -> int:
    """``streamlit run`` the dashboard app on a league directory (which may not hold a store yet)."""
    directory = pathlib.Path(args.dir)
    if not directory.is_dir():
        raise ValueError(f"No league directory at {directory}; give the directory a league runs in "
                         "(`marl-arena league run NAME --dir DIR`).")
    if importlib.util.find_spec("streamlit") is None:
        raise ValueError("The dashboard needs Streamlit: pip install 'marl-arena[dashboard]'.")
    from marl_arena_dashboard import APP, LEAGUE_DIR_ENV, READ_ONLY_ENV, SERVER_ENV

    if not _is_loopback(args.host):
        reach = "see the league" if args.read_only else "see the league and store matches in it (see --read-only)"
        logger.warning("The dashboard listens on %s:%d: anyone who can reach that address can %s.",
                       args.host, args.port, reach)
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", args.host,
               "--server.port", str(args.port), "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "minimal"]
    env = {**SERVER_ENV, **os.environ, LEAGUE_DIR_ENV: str(directory.resolve())}
    if args.read_only:
        env[READ_ONLY_ENV] = "1"
    return subprocess.call(command, env=env)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (a name other than localhost may be anything)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marl-arena", description="Multi-agent RL with leagues and self-play.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser("train", help="train an algorithm on an env")
    train_parser.add_argument("--algo", default="ppo", choices=ALGORITHM_NAMES)
    train_parser.add_argument("--env", required=True, help="env id: registered, plugin (scheme:name) or gymnasium")
    train_parser.add_argument("--env-config", nargs="*", default=[], metavar="KEY=VALUE")
    train_parser.add_argument("--stop-reward", type=float, help="stop when the mean training return reaches this")
    train_parser.add_argument("--stop-iters", type=int, help="stop after this many iterations")
    train_parser.add_argument("--stop-timesteps", type=int, help="stop after this many env steps")
    train_parser.add_argument("--num-env-runners", type=int, default=0)
    train_parser.add_argument("--num-envs-per-env-runner", type=int, default=1)
    train_parser.add_argument("--fcnet-hiddens", type=int, nargs="*", help="hidden layer sizes")
    train_parser.add_argument("--seed", type=int)
    train_parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                              help="any config field, e.g. lr=0.001 train_batch_size_per_learner=2000")
    train_parser.add_argument("--checkpoint-dir", help="write checkpoints here")
    train_parser.add_argument("--checkpoint-freq", type=int, default=10, help="iterations between checkpoints")
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    train_parser.set_defaults(handler=train)

    eval_parser = commands.add_parser("evaluate", help="evaluate a checkpoint greedily")
    eval_parser.add_argument("checkpoint")
    eval_parser.add_argument("--episodes", type=int, default=10)
    eval_parser.set_defaults(handler=evaluate)

    league_parser = commands.add_parser("league", help="run a league or show a stored one")
    league_commands = league_parser.add_subparsers(dest="league_command", required=True)
    run_parser = league_commands.add_parser("run", help="run a ready-made league by name, or a league script")
    run_parser.add_argument("league", help="take_away, rock_paper_scissors, kuhn_poker, leduc_poker, connect_four, simple_tag, "
                                           "tic_tac_toe or a .py script defining make_config(directory) and ITERATIONS")
    run_parser.add_argument("--dir", help="league directory (default league_runs/<name>); an existing one resumes")
    run_parser.add_argument("--iterations", type=int, help="iterations to run (default: the league's own)")
    run_parser.add_argument("--leaderboard-every", type=int, default=10, help="print the leaderboard this often")
    run_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    run_parser.add_argument("--address", help="join this Ray cluster ('auto': the one this machine is part of, "
                                          "started with `ray start`) instead of starting a local one")
    run_parser.add_argument("--env-runners", type=int, help="Ray runner actors per trainer (default: the league's "
                                                            "own); with them the trainers train at the same time")
    run_parser.set_defaults(handler=league_run)
    status_parser = league_commands.add_parser("status", help="print the leaderboard of a stored league")
    status_parser.add_argument("dir")
    status_parser.set_defaults(handler=league_status)
    export_parser = league_commands.add_parser(
        "export", help="write a stored league's games as offline episodes (Parquet, RLlib's columns)")
    export_parser.add_argument("dir", help="the league directory")
    export_parser.add_argument("--out", required=True, help="directory to write the Parquet files into")
    export_parser.add_argument("--players", help="comma-separated player ids whose moves to export (default: all)")
    export_parser.add_argument("--module-id", help="module id for every row (default: each row's player id)")
    export_parser.set_defaults(handler=league_export)

    dashboard_parser = commands.add_parser("dashboard", help="open the Streamlit dashboard on a league directory")
    dashboard_parser.add_argument("dir", help="the league directory (its store may appear later: the page waits)")
    dashboard_parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    dashboard_parser.add_argument("--host", default="127.0.0.1",
                                  help="address to listen on (default 127.0.0.1, this machine only; "
                                       "0.0.0.0 exposes the dashboard to the network)")
    dashboard_parser.add_argument("--read-only", action="store_true",
                                  help="hide the Play page, so that the dashboard never writes to the store")
    dashboard_parser.set_defaults(handler=dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "stop_reward", None) is None and args.command == "train" and not (args.stop_iters or args.stop_timesteps):
        raise SystemExit("train needs a stop condition: --stop-reward, --stop-iters or --stop-timesteps.")
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
