"""Render the README's benchmark table from ``benchmarks/results/*.json``, or check it.

Every figure in the table is read from the JSON that a benchmark script wrote, by this one
script, so that the README cannot print a number that no result file holds, nor keep one
after its file changed. The table lives in README.md between two marker comments::

    python benchmarks/render_table.py           # rewrite the table in README.md
    python benchmarks/render_table.py --check   # exit 1 if README.md's table is not the rendering

Learning figures are medians over seeds with their min-max in brackets, taken at the final
policy or at the first point where the target held for the recorded number of checks in a
row. A field that a row needs and its JSON lacks raises :class:`MissingField`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

try:  # python -m benchmarks.render_table, from the repository root
    from benchmarks import common
except ImportError:  # python benchmarks/render_table.py: benchmarks/ is sys.path[0]
    import common

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- benchmark-table:begin -->"
END = "<!-- benchmark-table:end -->"
COLUMNS = ("what", "marl_arena", "peer", "ratio", "command")


class MissingField(KeyError):
    """A row needs a field that its result file lacks (or holds as null)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class Node:
    """A dict or list inside one result file.

    Indexing a missing or null field raises :class:`MissingField` naming the file and the
    field's path, so a row never renders a stale default and never dies on a bare KeyError.
    """

    def __init__(self, value: dict | list, file: str, path: tuple = ()):
        self.value, self.file, self.path = value, file, path

    def __getitem__(self, key: str | int) -> Any:
        try:
            value = self.value[key]
        except (KeyError, IndexError, TypeError):
            value = None
        if value is None:
            where = ".".join(str(k) for k in (*self.path, key))
            raise MissingField(f"{self.file} has no field {where!r}: rerun the script that writes it, "
                               "or change its row in benchmarks/render_table.py")
        return Node(value, self.file, (*self.path, key)) if isinstance(value, (dict, list)) else value

    def optional(self, key: str) -> Any:
        """A field that may be absent or null (a ratio that a run could not take)."""
        return self[key] if isinstance(self.value, dict) and self.value.get(key) is not None else None

    def __iter__(self) -> Iterator[Any]:
        keys = range(len(self.value)) if isinstance(self.value, list) else list(self.value)
        return (self[k] for k in keys) if isinstance(self.value, list) else iter(keys)

    def __len__(self) -> int:
        return len(self.value)

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((key, self[key]) for key in self.value)


def load(directory: Path, name: str) -> Node:
    path = directory / f"{name}.json"
    if not path.exists():
        raise MissingField(f"{path} does not exist: run the benchmark that writes it")
    return Node(json.loads(path.read_text(encoding="utf-8")), f"benchmarks/results/{name}.json")


@dataclass(frozen=True)
class Row:
    what: str
    ours: str
    peer: str
    ratio: str
    command: str

    def markdown(self) -> str:
        cells = (self.what, self.ours, self.peer, self.ratio, f"`{self.command}`")
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


# ---------------------------------------------------------------------- number formats
def secs(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}" if value < 10 else f"{value:.0f}"


def kilo(value: float) -> str:
    """1.56M, 24k, 8.5k, 350: counts of steps and episodes, to the precision a reader uses."""
    if value >= 1_000_000:
        return f"{value / 1e6:.2f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def exploit(value: float) -> str:
    return f"{value:.3f}"


def span(figures: Node, fmt: Callable[[float], str], unit: str = "") -> str:
    """A ``common.spread`` record as 'median unit (min-max)', or one value where min and max print alike."""
    low, high = fmt(figures["min"]), fmt(figures["max"])
    return f"{fmt(figures['median'])}{unit}" + ("" if low == high else f" ({low}-{high})")


def returns(figures: Node) -> str:
    """A ``common.spread`` record of returns that may be negative: 'median (min to max)', since 'a-b'
    would read as a minus sign."""
    return f"{figures['median']:.0f} ({figures['min']:.0f} to {figures['max']:.0f})"


def spread(values: Iterable[float], fmt: Callable[[float], str], unit: str = "") -> str:
    """Median with min-max in brackets, over seeds or repeats ('n/a' over none)."""
    values = list(values)
    return span(Node(common.spread(values), "(computed)"), fmt, unit) if values else "n/a"


def seed_list(seeds: Iterable[int]) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)


def times(value: float, what: str = "the time") -> str:
    return f"{value:.2f}x {what}"


def consecutive(records: Iterable[Node], key: str = "consecutive") -> int:
    """How many checks in a row the runs asked for: one number, or the file contradicts itself."""
    records = list(records)
    values = {record[key] for record in records}
    if len(values) != 1:
        raise MissingField(f"{records[0].file}: runs disagree on {key!r}: {sorted(values)}")
    return values.pop()


# ---------------------------------------------------------------------- learning to a target
def to_target(task: Node) -> str:
    """'3/3 reached; 5.7 s (5.2-7.0), 24k env steps (20k-28k)' over a train_to_target task's seeds."""
    runs = list(task["runs"])
    reached = sum(bool(run["reached"]) for run in runs)
    used = (f"{spread((r['wall_s'] for r in runs), secs, ' s')}, "
            f"{spread((r['env_steps'] for r in runs), kilo, ' env steps')}")
    if not reached:
        return f"0/{len(runs)} reached within the budget; used {used}"
    if reached < len(runs):
        return f"{reached}/{len(runs)} reached; {used} (a seed that missed counts the budget it used)"
    return f"{reached}/{len(runs)} reached; {used}"


def target_what(label: str, result: Node, task: str, extra: str = "") -> str:
    """'<label> to greedy 450<extra>, 3 evaluations in a row (seeds 100-102)'."""
    tasks = result["tasks"]
    return (f"{label} to greedy {tasks[task]['target']:g}{extra}, {consecutive(tasks[task]['runs'])} evaluations "
            f"in a row ({seed_list(result['seeds'])})")


def peer_ratio(ratios: Node, key: str) -> str:
    """The JSON's own ours-over-RLlib wall-time ratio, or why there is none."""
    if ratios.optional("note"):
        return "none: a side missed the target on some seed"
    return times(ratios[key])


def ppo_rows(directory: Path) -> list[Row]:
    result = load(directory, "ppo_learning")
    tasks, command = result["tasks"], result["command"]
    return [
        Row(target_what("PPO CartPole-v1", result, "cartpole"), to_target(tasks["cartpole"]),
            f"RLlib PPO, same settings: {to_target(tasks['cartpole_rllib'])}",
            peer_ratio(result["ratios"], "cartpole_wall_s_ours_over_rllib"), command),
        Row(target_what("PPO MultiAgentCartPole, both agents,", result, "ma_cartpole_independent"),
            f"independent modules: {to_target(tasks['ma_cartpole_independent'])}; one shared module: "
            f"{to_target(tasks['ma_cartpole_shared'])}", "", "", command),
        Row(target_what("PPO Pendulum-v1", result, "pendulum"), to_target(tasks["pendulum"]), "", "", command),
    ]


def ppo_speed_rows(directory: Path) -> list[Row]:
    """PPO against RLlib under RLlib's tuned settings (CartPole, then multi-agent CartPole and
    Pendulum), our iteration's phases, and self-play throughput."""
    result = load(directory, "ppo_speed")
    command = result["command"]
    rows = [ppo_speed_task_row(result, "cartpole", "PPO CartPole-v1, RLlib's tuned settings, 1 remote runner,")]
    protocol_3 = load(directory, "ppo_speed_ma_cartpole_pendulum")
    rows += [ppo_speed_task_row(protocol_3, "ma_cartpole", "PPO MultiAgentCartPole, 4 agents, one module each, "
                                "RLlib's tuned multi-agent settings, 1 remote runner, mean per agent"),
             ppo_speed_task_row(protocol_3, "pendulum", "PPO Pendulum-v1, RLlib's tuned settings without "
                                "MeanStdFilter, 2 remote runners x 20 envs,")]
    selfplay = result.optional("selfplay")
    if selfplay is not None and selfplay.optional("rllib") is not None:
        trunk = "value head on the policy's trunk" if selfplay["settings"]["vf_share_layers"] else "separate value trunk"
        rows.append(Row(f"PPO self-play throughput, {selfplay['game']}, one module on both seats, train batch "
                        f"{selfplay['settings']['train_batch_size_per_learner']}, 1 remote runner, {trunk}; median "
                        f"of {len(selfplay['ours']['reps'])} measurements a side, alternating",
                        f"{selfplay['ours']['env_steps_per_s']:.0f} env steps/s" + overlapped_selfplay(selfplay),
                        f"RLlib PPO via OpenSpielEnv, same settings: {selfplay['rllib']['env_steps_per_s']:.0f} env steps/s",
                        times(selfplay["env_steps_per_s_ours_over_rllib"], "the throughput"), command))
    return rows


def ppo_speed_task_row(result: Node, task: str, label: str) -> Row:
    """One ppo_speed task against RLlib: time to target and our median iteration's phases."""
    tasks = result["tasks"]
    phases = tasks[task]["breakdown_s"]
    split = ", ".join(f"{name.replace('_', ' ')} {secs(phases[name])}"
                      for name in ("sampling", "weight_sync", "gae", "minibatch_updates"))
    return Row(target_what(label, result, task),
               f"{to_target(tasks[task])}; iteration {secs(phases['iteration'])} s ({split})",
               f"RLlib PPO, same settings: {to_target(tasks[f'{task}_rllib'])}",
               peer_ratio(result["ratios"][task], "wall_s_ours_over_rllib"), result["command"])


def overlapped_selfplay(selfplay: Node) -> str:
    """Our self-play throughput with overlapped sampling, beside the comparison (not RLlib's algorithm)."""
    overlapped = selfplay.optional("ours_overlapped")
    if overlapped is None:
        return ""
    return f" ({overlapped['env_steps_per_s']:.0f} with overlap_sampling, one update of policy lag)"


def dqn_row(directory: Path, name: str, label: Callable[[Node], str]) -> Row:
    result = load(directory, name)
    tasks = result["tasks"]
    return Row(target_what(label(result["hyperparameters"]), result, "cartpole"), to_target(tasks["cartpole"]),
               f"RLlib DQN, same settings: {to_target(tasks['cartpole_rllib'])}",
               peer_ratio(result["ratios"], "cartpole_wall_s_ours_over_rllib"), result["command"])


def dqn_rows(directory: Path) -> list[Row]:
    return [
        dqn_row(directory, "dqn_learning",
                lambda h: f"DQN CartPole-v1 (double, dueling, {h['n_step']}-step returns, prioritized replay)"),
        dqn_row(directory, "dqn_learning_rainbow",
                lambda h: f"DQN Rainbow CartPole-v1 (the above + C51 with {h['num_atoms']} atoms + noisy heads, "
                          f"epsilon {h['epsilon']:g})"),
    ]


def sac_row(directory: Path, name: str, task: str, label: str) -> Row:
    result = load(directory, name)
    tasks = result["tasks"]
    ours, rllib = list(tasks[task]["runs"]), list(tasks[f"{task}_rllib"]["runs"])
    peer_seeds = seed_list(run["seed"] for run in rllib)
    ratio = peer_ratio(result["ratios"][task], "wall_s_ours_over_rllib")
    if len(rllib) < len(ours) and ratio.endswith("the time"):
        ratio += f" (our median over RLlib's {peer_seeds})"
    return Row(target_what(label, result, task, f" within {kilo(tasks[task]['max_env_steps'])} env steps"),
               to_target(tasks[task]), f"RLlib SAC, same settings, {peer_seeds}: {to_target(tasks[f'{task}_rllib'])}",
               ratio, result["command"])


def sac_rows(directory: Path) -> list[Row]:
    return [
        sac_row(directory, "sac_learning_pendulum", "pendulum", "SAC Pendulum-v1"),
        sac_row(directory, "sac_learning_cartpole", "cartpole", "discrete SAC CartPole-v1"),
    ]


# ---------------------------------------------------------------------- leagues and self-play
def dqn_league_row(directory: Path) -> Row:
    result = load(directory, "dqn_league")

    def trainer(name: str) -> str:
        hit = [run for run in result[name]["runs"] if run["reached"]]
        return (f"{len(hit)}/{len(result[name]['runs'])} reached; "
                f"{spread((r['wall_s_to_target'] for r in hit), secs, ' s')}, "
                f"{spread((r['env_steps_to_target'] for r in hit), kilo, ' env steps')}")

    ratio = result.optional("wall_s_dqn_over_ppo")
    return Row(f"DQN as a league trainer, tic_tac_toe league (leagues/tic_tac_toe.py): {result['target']}; "
               f"{seed_list(result['seeds'])}", trainer("dqn"), f"PPO as the trainer in the same league: "
               f"{trainer('ppo')}", times(ratio) if ratio is not None else "none: a trainer missed on some seed",
               result["command"])


def selfplay_rows(directory: Path) -> list[Row]:
    result = load(directory, "openspiel_selfplay")
    rows = []
    for game, task in result["tasks"].items():
        runs = list(task["runs"])
        hit = [run for run in runs if run["reached"]]
        rows.append(Row(
            f"self-play PPO {game}, one shared module: {runs[0]['target']}; {seed_list(result['seeds'])}",
            f"{len(hit)}/{len(runs)} reached; {spread((r['wall_s_to_target'] for r in hit), secs, ' s')}, "
            f"{spread((r['episodes_to_target'] for r in hit), kilo, ' episodes')}", "", "", result["command"]))
    return rows


def league_rows(directory: Path) -> list[Row]:
    result = load(directory, "league_exploitability")
    return [league_row(game, entry, result["command"]) for game, entry in result["games"].items()]


def league_row(game: str, entry: Node, command: str) -> Row:
    summary, targets = entry["summary"], entry["targets"]
    checks = consecutive((run["league"]["pool_nash_mixture"] for run in entry["runs"]), key="consecutive_checks")
    seeds = summary["seeds"]

    def value(series: str) -> str:
        return span(summary[series]["final"], exploit)

    def final(series: str) -> str:
        return f"{value(series)} ({summary[series]['final_below_target_seeds']}/{seeds} below target)"

    held = summary["league_pool_nash"]["held_target_seeds"]
    first = f", first at {span(summary['league_pool_nash']['first_held_target_train_s'], secs, ' s')}" if held else ""
    capped = summary["league_stopped_by_wall_cap"]
    loads = sorted(round(run["load_before"]["league"]["loadavg"][0]) for run in entry["runs"])
    load = f"{loads[0]}" if loads[0] == loads[-1] else f"{loads[0]}-{loads[-1]}"
    magnet = entry["runs"][0]["league"]["settings"]["ppo"].optional("learner_class") == "MagnetPPOLearner"
    trainer = "self-play PPO pulled towards a moving magnet (MMD)" if magnet else "self-play PPO"
    return Row(
        f"league on {game} ({trainer} with an annealed learning rate, snapshots), "
        f"{span(summary['league_env_steps'], kilo)} env steps in {span(summary['wall_s_each'], secs, ' s')} per seed"
        f"{f', {capped} stopped by the 10-minute cap' if capped else ''} ({seed_list(entry['seeds'])}; 2 cores at load "
        f"average {load} as the league started): exploitability "
        f"of the final policies, targets: main agent < {targets['main_agent']:g}, pool mixture < "
        f"{targets['pool_mixture']:g} (uniform random: {entry['uniform_random_exploitability']:.3g})",
        f"main agent {final('league_main_agent')}, pool Nash mixture {final('league_pool_nash')}; the pool held < "
        f"{targets['pool_mixture']:g} for {checks} checks in a row on {held}/{seeds} seeds{first}",
        f"same run, same training seconds: OpenSpiel NFSP average policy {value('nfsp_average_policy')}; OpenSpiel "
        f"psro_v2 (policy-gradient oracle) meta-strategy mixture {value('psro_v2_pool_mixture')}, newest policies "
        f"{value('psro_v2_newest')} after {span(summary['psro_v2_iterations'], kilo)} iterations", "", command)


def league_psro_row(directory: Path) -> Row:
    result = load(directory, "league_psro")
    summary, targets = result["summary"], result["targets"]
    checks = consecutive((run["league"]["pool_mixture"] for run in result["runs"]), key="consecutive_checks")

    def final(series: str) -> str:
        return span(summary[series]["final"], exploit)

    held = summary["league_pool_mixture"]["held_target_seeds"]
    return Row(
        f"PSRO league on {result['game']} (PPO oracle, Nash meta-solver over the exact meta-game), "
        f"{span(summary['train_s_each'], secs, ' s')} of training per seed ({seed_list(result['seeds'])}): "
        f"exploitability of the final policies, targets: pool mixture < {targets['pool_mixture']:g}, main agent "
        f"< {targets['main_agent']:g} (uniform random: {result['uniform_random_exploitability']:.3g})",
        f"pool mixture {final('league_pool_mixture')} after {span(summary['league_epochs'], kilo)} epochs, oracle "
        f"{final('league_main_agent')}; the pool held < {targets['pool_mixture']:g} for {checks} checks in a row on "
        f"{held}/{summary['seeds']} seeds",
        f"OpenSpiel psro_v2 (policy-gradient oracle), same training seconds: meta-strategy mixture "
        f"{final('psro_v2_pool_mixture')}, newest policies {final('psro_v2_newest')} after "
        f"{span(summary['psro_v2_iterations'], kilo)} iterations; NFSP average policy {final('nfsp_average_policy')}",
        "", result["command"])


# ---------------------------------------------------------------------- throughput and programs
def sampling_rows(directory: Path) -> list[Row]:
    result = load(directory, "sampling_throughput")
    rows = []
    for _, entry in result["results"].items():
        runners, envs = entry["num_env_runners"], entry["num_envs_per_env_runner"]
        ours, rllib = list(entry["ours_windows"]), list(entry["rllib_windows"])
        rows.append(Row(
            f"sampling CartPole-v1, {'in the driver' if runners == 0 else f'{runners} Ray runners'}, {envs} "
            f"env{'s' if envs > 1 else ''}{' each' if runners else ''} ({len(ours)} windows a side, alternating)",
            f"{spread((w['env_steps_per_s'] for w in ours), kilo, ' steps/s')}",
            f"RLlib {spread((w['env_steps_per_s'] for w in rllib), kilo)}",
            times(entry["ratio_ours_over_rllib"], "the rate"), result["command"]))
    phases = result.optional("selfplay_phases")
    if phases is not None:
        for _, entry in phases["results"].items():
            envs, us = entry["num_envs_per_env_runner"], entry["cpu_us_per_env_step_by_phase"]
            split = ", ".join(f"{name.replace('_', ' ')} {us[name]:.0f}" for name in us)
            rows.append(Row(
                f"where a sampling step goes: {phases['game']} self-play, one [256, 256] module on both seats, "
                f"in the driver, {envs} env{'s' if envs > 1 else ''} (CPU microseconds per env step)",
                f"{kilo(entry['cpu_env_steps_per_s_untimed'])} steps per CPU second; {split}", "", "",
                result["command"]))
    return rows


def external_throughput_rows(directory: Path) -> list[Row]:
    result = load(directory, "external_throughput")
    rows = []
    for _, entry in result["results"].items():
        clients = entry["num_clients"]
        external, local = list(entry["external_windows"]), list(entry["in_process_windows"])
        rows.append(Row(
            f"external simulators, CartPole-v1: {clients} client process{'es' if clients > 1 else ''} with local ONNX "
            f"inference over loopback TCP ({len(external)} windows a side, alternating)",
            f"{spread((w['env_steps_per_s'] for w in external), kilo, ' steps/s')}",
            f"our in-process EnvRunner, {clients} env{'s' if clients > 1 else ''}: "
            f"{spread((w['env_steps_per_s'] for w in local), kilo, ' steps/s')}",
            f"{entry['ratio_external_over_in_process']:.2f} (external / in process, medians)", result["command"]))
    return rows


def external_cartpole_row(directory: Path) -> Row:
    result = load(directory, "external_cartpole")
    settings, wall, reached = result["settings"], result["wall_s"], result["reached"]
    pairs = settings["pairs"]
    return Row(
        f"external simulators, examples/cartpole_external_tcp.py: PPO to a smoothed return of "
        f"{settings['target_return']} from {settings['clients']} client processes (local ONNX inference), "
        f"{pairs} alternating pairs, goal <= {result['goal']:g}x the in-process time",
        f"{reached['external']}/{pairs} reached; {span(wall['external'], secs, ' s')}",
        f"the same script with an in-process runner (--local): {reached['in_process']}/{pairs} reached; "
        f"{span(wall['in_process'], secs, ' s')}",
        times(result["ratio"]) + f" (pairs {', '.join(f'{r:.2f}' for r in result['ratio_per_pair'])})",
        result["command"])


def external_league_row(directory: Path) -> Row:
    result = load(directory, "external_league")
    summary, settings = result["summary"], result["settings"]
    return Row(
        f"league on external games: tic-tac-toe hosted by {settings['servers']} match-server processes over TCP, PPO "
        f"main agent vs itself and its snapshots, win-or-draw >= {settings['target_win_or_draw']:g} vs random from "
        f"both seats ({settings['consecutive']} checks in a row, {settings['eval_games']} games each), "
        f"{seed_list(settings['seeds'])}",
        f"{summary['seeds_reached']} seeds; {span(summary['env_steps'], kilo)} moves, "
        f"{span(summary['wall_s'], secs, ' s')}; seats {span(summary['seat0_win_or_draw'], pct)} / "
        f"{span(summary['seat1_win_or_draw'], pct)}",
        "in process: the openspiel_selfplay tic-tac-toe row", "", result["command"])


def adapter_rows(directory: Path) -> list[Row]:
    result = load(directory, "adapter_throughput")
    rows = []
    for library, raw in (("pettingzoo", "raw PettingZoo AEC loop"), ("openspiel", "raw pyspiel loop")):
        games = result[library]
        rate = {side: " / ".join(span(games[g][f"{side}_steps_per_s"], kilo) for g in games)
                for side in ("adapter", "raw")}
        rows.append(Row(
            f"env adapter vs raw library, {library} {' / '.join(games)}, random legal actions "
            f"({result['repeats']} runs a side, alternating)", f"{rate['adapter']} steps/s", f"{raw}: {rate['raw']}",
            " / ".join(f"{games[g]['ratio']:.2f}" for g in games) + " (adapter / raw, medians)", result["command"]))
    return rows


def taxi_row(directory: Path) -> Row:
    result = load(directory, "taxi_first_page")

    def side(name: str) -> str:
        data = result["sides"][name]
        if not data["all_finished"]:
            return (f"did not finish in {data['timeout_s']:.0f} s (stopped; {data['finished']} of "
                    f"{data['runs']} runs finished, a side that times out is not run again)")
        return f"{span(data['wall_s'], secs, ' s')} over {data['runs']} runs"

    ratio = result.optional("ratio_ours_over_rllib")
    return Row(f"RLlib's first-page Taxi program ({result['program']}: 2 env runners + 1 evaluation runner, 5 "
               "train() + evaluate()), the whole program in a fresh process", side("marl_arena"),
               f"RLlib, the same file with its imports: {side('rllib')}", times(ratio) if ratio is not None else "",
               result["command"])


def gpu_row(directory: Path) -> Row:
    """Measured once on a cloud GPU (this machine has none): rendered as its JSON says, and labelled so."""
    result = load(directory, "gpu_learner")
    ppo, update, off_policy = result["ppo_cartpole"], result["learner_update"], result["off_policy"]
    sac = off_policy["sac_pendulum"]
    restored = "equal weights" if ppo["restored_on_cpu"]["weights_equal"] else "weights DIFFER"
    finite = "finite" if all(off_policy[algo]["losses_finite"] for algo in off_policy) else "NON-FINITE"
    return Row(
        f"`num_gpus_per_learner=1`, measured on one {result['gpu']}, not on this machine: PPO CartPole with "
        f"parameters and Adam state on cuda (checkpoint restores on CPU, {restored}); DQN Rainbow and SAC learners "
        f"on cuda, {finite} losses; nccl learner group of one",
        f"greedy {ppo['best_greedy_return']:.0f} at the first evaluation over 450, iteration {ppo['iterations']}; "
        f"PPO update, batch {update['batch']}, {list(update['hidden'])}: {update['gpu_s']:.3f} s; SAC Pendulum on "
        f"cuda: {1000 * sac['seconds'] / sac['env_steps']:.0f} ms per env step",
        f"same update on that machine's {update['cpu_threads']} CPU threads: {update['cpu_s']:.3f} s",
        times(update["cpu_over_gpu"], "faster on the GPU"), result["command"])


def dashboard_row(directory: Path) -> Row:
    result = load(directory, "dashboard_load")
    pages = result["pages"]
    worst = max(pages, key=lambda page: pages[page]["page_s"])
    runs = list(pages[worst]["runs_s"])
    return Row(f"dashboard on a league of {result['store']['players']} players and {result['store']['matches']:,} "
               f"matches: each page's cold load (full AppTest run, caches cleared), goal < {result['target_s']:g} s",
               f"worst page {worst}: {spread(runs, secs, ' s')} over {len(runs)} cold runs; a live-refresh tick with "
               f"no new data <= {max(pages[page]['warm_s'] for page in pages):.2f} s", "", "", result["command"])


def impala_appo_rows(directory: Path) -> list[Row]:
    result = load(directory, "impala_appo")

    def part(tasks_run: str) -> Node:
        """The rerun of some tasks alone (``--tasks ... --out``) where there is one: it replaces the full run's figures."""
        name = f"impala_appo_{tasks_run}"
        return load(directory, name) if (directory / f"{name}.json").exists() else result

    cartpole_run = part("cartpole_rllib")
    tasks, ratios, command = cartpole_run["tasks"], cartpole_run["ratios"], cartpole_run["command"]

    def versus_rllib(name: str, label: str) -> Row:
        peer = tasks[f"cartpole_{name}_rllib"]
        ratio = ratios[f"cartpole_{name}"]
        note = " (RLlib at its whole budget)" if ratio.optional("note") else ""
        missed = "" if ratio["goal_met"] else "; goal <= 0.1 not met"
        return Row(target_what(f"{label} CartPole-v1", cartpole_run, f"cartpole_{name}"),
                   to_target(tasks[f"cartpole_{name}"]),
                   f"RLlib {label}, its tuned CartPole example ({seed_list(peer['seed_list'])}, "
                   f"{peer['time_budget_s']} s budget): {to_target(peer)}",
                   times(ratio["wall_s_ours_over_rllib"]) + note + missed, command)

    throughput_run = part("throughput")
    throughput = throughput_run["tasks"]["throughput"]
    ours, rllib = throughput["ours_appo"], throughput["rllib_appo"]
    runners = throughput_run["settings"]["throughput_both_sides"]["runners"]
    return [
        versus_rllib("appo", "APPO"),
        versus_rllib("impala", "IMPALA"),
        Row(f"APPO throughput, {runners['num_env_runners']} Ray runners x {runners['num_envs_per_env_runner']} envs, "
            f"sampling and learning at once, {ours['seconds']:.0f} s a side",
            f"{kilo(ours['env_steps_per_s'])} env steps/s, {ours['learner_updates_per_s']:.1f} updates/s "
            f"(staleness {ours['sample_staleness_mean']:.1f} versions)",
            f"RLlib APPO, same settings: {kilo(rllib['env_steps_per_s'])} env steps/s, "
            f"{rllib['learner_updates_per_s']:.1f} updates/s",
            f"{throughput['env_steps_per_s_ours_over_rllib']:.2f}x the env steps/s, "
            f"{throughput['learner_updates_per_s_ours_over_rllib']:.2f}x the updates/s", throughput_run["command"]),
        Row(target_what("APPO Pendulum-v1", result, "pendulum_appo"), to_target(result["tasks"]["pendulum_appo"]),
            "", "", result["command"]),
    ]


def connect_four_row(directory: Path) -> Row:
    result = load(directory, "connect_four_selfplay")
    league, rllib = result["appo_league"], result["rllib_ppo"]
    runs = list(league["runs"])
    reached = [run for run in runs if run["reached"]]
    target = (f"{len(reached)}/{len(runs)} reached within {runs[0]['budget_s']:g} s of training"
              + (f"; {span(league['train_s_to_target'], secs, ' s')}, "
                 f"{span(league['env_steps_to_target'], kilo, ' env steps')}" if reached else ""))
    runners = result["settings"]["runners"]
    sampling = (f"{runners['num_env_runners']} Ray runners x {runners['num_envs_per_env_runner']} envs"
                if runners["num_env_runners"] else f"{runners['num_envs_per_env_runner']} envs in the driver")
    return Row(f"APPO league on OpenSpiel connect_four (main agent, its snapshots, a random bot; {sampling}): "
               f"greedy wins >= 95% vs random from both seats, {consecutive(runs)} checks in a row "
               f"({seed_list(result['seeds'])})",
               f"{target}; final wins {span(league['final_win_seat0'], pct)} first, "
               f"{span(league['final_win_seat1'], pct)} second; {span(league['env_steps_per_s'], kilo, ' env steps/s')}",
               f"RLlib PPO self-play through its OpenSpielEnv ({rllib['settings'].split(',')[1].strip()}): "
               f"{kilo(rllib['env_steps_per_s'])} env steps/s",
               f"{result['env_steps_per_s_ours_over_rllib']:.1f}x the env steps/s", result["command"])


def connect_four_cnn_row(directory: Path) -> Row:
    result = load(directory, "connect_four_cnn")
    summary, h2h = result["summary"], result["head_to_head"]
    layers = list(result["models"]["cnn"]["conv_filters"])
    filters = f"{len(layers)} conv layers of {', '.join(str(layer[0]) for layer in layers)} channels"

    def wins(model: str) -> str:
        figures = summary[model]
        return (f"vs random {span(figures['vs_random_seat0_win'], pct)} first, "
                f"{span(figures['vs_random_seat1_win'], pct)} second; vs MCTS "
                f"{span(figures['vs_mcts_win_both_seats'], pct)}; {span(figures['env_steps'], kilo, ' env steps')}")

    return Row(f"CNN vs the default MLP as the model of the APPO connect_four league, "
               f"{result['budget_s_per_model_and_seed']:g} s of training each ({seed_list(result['seeds'])}): greedy "
               f"win rates vs random and vs OpenSpiel MCTS ({result['evaluation'].split('(')[1].split(',')[0]})",
               f"CNN ({filters}, same padding): {wins('cnn')}",
               f"default MLP 256x256: {wins('mlp')}",
               f"head to head: CNN greedy wins {span(h2h['cnn_greedy_vs_mlp_sampled_win'], pct)} of games vs the MLP "
               f"sampling, the MLP greedy {span(h2h['mlp_greedy_vs_cnn_sampled_win'], pct)} vs the CNN; goal (CNN "
               f"stronger) {'met' if all(result['cnn_stronger'][k] for k in result['cnn_stronger']) else 'not met'}",
               result["command"])


def stateless_cartpole_lstm_row(directory: Path) -> Row:
    """PPO with use_lstm on StatelessCartPole, next to the same PPO with an MLP and RLlib's LSTM PPO."""
    result = load(directory, "stateless_cartpole_lstm")
    tasks, settings = result["tasks"], result["settings"]
    budget = settings["budget_per_run"]
    mlp = tasks["mlp"]
    return Row(f"{target_what('PPO with use_lstm=True on StatelessCartPole (no velocities observed)', result, 'lstm')}"
               f"; budget {secs(budget['wall_s'])} s or {kilo(budget['env_steps'])} env steps per run",
               f"LSTM: {to_target(tasks['lstm'])}; same PPO with the MLP: {to_target(mlp)}, final greedy return "
               f"{spread((run['final_eval_return'] for run in mlp['runs']), secs)}",
               f"RLlib PPO with its LSTM, same settings: {to_target(tasks['lstm_rllib'])}",
               peer_ratio(result["ratios"], "wall_s_ours_over_rllib"), result["command"])


def curiosity_maze_row(directory: Path) -> Row:
    """PPO with count-based curiosity against plain PPO on a sparse maze, the same env-step budget each."""
    result = load(directory, "curiosity_sparse_maze")
    settings, summary = result["settings"], result["summary"]
    size = len(settings["env_config"]["desc"])

    def side(figures: Node) -> str:
        reached, seeds = figures["seeds_reached"], len(settings["seeds"])
        final = f"final greedy return {span(figures['final_greedy_return'], lambda v: f'{v:g}')}"
        if reached.startswith("0/"):
            at_goal = figures.optional("seeds_any_training_episode_at_goal")
            return (f"{reached} reached within {kilo(settings['max_env_steps'])} env steps; {final}"
                    + ("" if at_goal is None else f"; a training episode reached the goal on {at_goal}/{seeds} seeds"))
        return (f"{reached} reached; {span(figures['env_steps'], kilo, ' env steps')}, "
                f"{span(figures['wall_s'], secs, ' s')}; {final}")

    return Row(f"count-based curiosity (examples/count_based_curiosity.py, beta {settings['beta']:g}): PPO on FrozenLake "
               f"{size}x{size} without holes, reward 1 only at the far corner, "
               f"{settings['env_config']['max_episode_steps']} moves per episode; the greedy policy at the goal "
               f"{settings['consecutive']} checks in a row, within {kilo(settings['max_env_steps'])} env steps "
               f"({seed_list(settings['seeds'])})",
               f"PPO + curiosity: {side(summary['curiosity'])}",
               f"plain PPO, same budget: {side(summary['plain'])}" + (
                   "" if summary.optional("rllib_curiosity") is None else
                   f"; RLlib PPO with RLlib's example CountBasedCuriosity connector (1/N(s), coefficient 1), same "
                   f"settings and budget: {side(summary['rllib_curiosity'])}"),
               "" if summary["curiosity"]["seeds_reached"].startswith("0/") else
               f"curiosity at the target in {pct(summary['curiosity']['env_steps']['median'] / settings['max_env_steps'])}"
               " of the budget (median)", result["command"])


def killed_runner_row(directory: Path) -> Row:
    result = load(directory, "impala_appo_killed_every_4s")
    task, settings = result["tasks"]["cartpole_appo_killed_runners"], result["settings"]["killed_runners"]
    run = task["runs"][0]
    return Row(f"APPO CartPole-v1 to greedy {task['target']:g} with {settings['num_env_runners']} Ray runners, one "
               f"killed every {settings['kill_every_s']:g} s ({seed_list(task['seed_list'])})",
               f"{to_target(task)}; {run['kills']} kill(s), {run['num_env_runner_restarts']} restart(s), "
               f"{run['num_fragments_dropped']} fragment(s) dropped", "", "", result["command"])


def league_concurrency_row(directory: Path) -> Row:
    result = load(directory, "league_concurrency")
    runs = {(run["trainers"], run["concurrent"]): run["iteration_s_median"] for run in result["runs"]}
    cluster = result["ray_cluster"]
    return Row(f"league iteration with 3 trainers vs 1 (take_away, {result['env_runners_per_trainer']} Ray runner per "
               f"trainer) on a {cluster['nodes']}-node Ray cluster of {cluster['cpus']:g} CPUs; goal <= 1.3x where "
               "the cluster has the cores",
               f"1 trainer {secs(runs[1, True])} s; 3 at once {secs(runs[3, True])} s; 3 in turn {secs(runs[3, False])} s",
               "", f"{result['ratio_3_concurrent_over_1']:.2f}x at once, {result['ratio_3_in_turn_over_1']:.2f}x in turn "
               "(2 cores cannot hold 3 trainers)", result["command"])


def snapshot_memory_row(directory: Path) -> Row:
    result = load(directory, "league_snapshot_memory")
    by_limit = result["by_max_opponents_per_runner"]

    def memory(limit: str) -> str:
        return " / ".join(f"{row['runner']['private_mib']:.0f}" for row in by_limit[limit])

    counts = " / ".join(str(row["snapshots"]) for row in by_limit["16"])
    return Row(f"runner memory in a {result['env']} league with {counts} snapshots drawn uniformly "
               "(private MiB; object-store pages it maps are shared, not counted)",
               f"max_opponents_per_runner=16: {memory('16')} MiB", f"no limit: {memory('None')} MiB", "",
               result["command"])


def store_scale_row(directory: Path) -> Row:
    result = load(directory, "league_store_scale")
    store = result["store"]
    return Row(f"league store of {store['matches']:,} matches, {store['players']} players: load time, goal < "
               f"{result['target_s']:g} s",
               f"`marl-arena league status` {spread(result['status_runs_s'], secs, ' s')} "
               f"(whole process; {secs(result['cli_import_s'])} s of it imports); dashboard leaderboard "
               f"{secs(result['leaderboard_page_s'])} s", f"counting from the matches table: {secs(result['recount_s'])} s",
               "", result["command"])


def rating_calibration_row(directory: Path) -> Row:
    result = load(directory, "rating_calibration")
    worst = result["worst_abs_error"]
    before, after = worst["before"], worst["after"]
    return Row(f"rating calibration, take_away league ({result['iterations']} iterations): worst gap between predicted "
               f"and observed win rate over pairs with >= {result['min_games']} games, goal <= "
               f"{100 * result['target_abs_error']:.0f} points",
               f"version-aware Bradley-Terry {100 * after['bradley_terry']:.1f}, re-anchored Elo {100 * after['elo']:.1f} "
               "points (current versions)",
               f"online Elo before: {100 * before['elo_online_whole_history']:.1f} points (whole history), "
               f"{100 * before['elo_online_current_versions']:.1f} (current versions)", "", result["command"])


# ---------------------------------------------------------------------- offline RL
def offline_row(directory: Path) -> Row:
    """BC and MARWIL from recorded CartPole episodes, at the final policy, beside RLlib's BC."""
    result = load(directory, "offline_cartpole")
    tasks, data = result["tasks"], result["data"]

    def final(name: str) -> str:
        task = tasks[name]
        text = span(task["final_eval_return"], lambda v: f"{v:.0f}")
        if task.optional("target") is not None:
            text += f", {task['reached_seeds']}/{task['seeds']} >= {task['target']:g}"
        return f"{text} in {span(task['wall_s'], secs, ' s')}"

    what = (f"BC / MARWIL CartPole-v1 from {kilo(data['expert']['rows'])} rows of PPO-expert episodes (median return "
            f"{data['expert']['return']['median']:.0f}) and {kilo(data['random']['rows'])} random rows: greedy return "
            f"of the final policy ({seed_list(result['seeds'])})")
    ours = (f"BC on expert {final('bc_expert')}; on expert + random: MARWIL {final('marwil_mixed')}, "
            f"BC {final('bc_mixed')}")
    peers, ratios = [], []
    for name, label in (("bc_expert", "BC"), ("marwil_mixed", "MARWIL")):
        rllib = tasks[f"{name}_rllib"]
        errors = [run["error"] for run in rllib["runs"] if isinstance(run.value, dict) and run.optional("error")]
        if errors:
            peers.append(f"RLlib {label} on the same files failed: {errors[0][:200]}")
            continue
        peers.append(f"RLlib {label}, same files and settings: {final(f'{name}_rllib')}")
        ratios.append(f"{label} {times(tasks[name]['wall_s']['median'] / rllib['wall_s']['median'])}")
    return Row(what, ours, "; ".join(peers), ", ".join(ratios), result["command"])


def offline_cql_row(directory: Path) -> Row:
    """CQL from a SAC run's recorded Pendulum episodes, at the final policy, beside RLlib's CQL."""
    result = load(directory, "offline_pendulum_cql")
    tasks, data = result["tasks"], result["data"]

    def final(name: str) -> str:
        task = tasks[name]
        return (f"{returns(task['final_eval_return'])}, {task['reached_seeds']}/{task['seeds']} "
                f">= {task['target']:g}, {task['goal_seeds']}/{task['seeds']} >= {task['goal']:g}, "
                f"in {span(task['wall_s'], secs, ' s')}")

    what = (f"CQL Pendulum-v1 from {kilo(data['rows'])} rows of a SAC run's episodes (returns "
            f"{returns(data['return'])}): greedy return of the final policy "
            f"({seed_list(result['seeds'])})")
    rllib = tasks["cql_rllib"]
    errors = [run["error"] for run in rllib["runs"] if isinstance(run.value, dict) and run.optional("error")]
    if errors:
        return Row(what, final("cql"), f"RLlib CQL on the same files failed: {errors[0][:200]}", "", result["command"])
    iterations = spread((run["iterations"] for run in rllib["runs"]), lambda v: f"{v:.0f}")
    peer = (f"RLlib CQL, same files and settings: {final('cql_rllib')} ({iterations} of "
            f"{tasks['cql']['runs'][0]['iterations']} iterations in its time budget)")
    # RLlib may stop short of the iterations (its time budget), so compare seconds per gradient step.
    def per_step(task: Node) -> float:
        return common.median([run["train_s"] / run["iterations"] for run in task["runs"]])

    ratio = times(per_step(tasks["cql"]) / per_step(rllib), "the time per gradient step")
    return Row(what, final("cql"), peer, ratio, result["command"])


def offline_interop_row(directory: Path) -> Row:
    """Each library's BC on the files the other recorded, in one run of offline_cartpole."""
    result = load(directory, "offline_cartpole")
    tasks, data = result["tasks"], result["data"]

    def final(task: Node) -> str:
        return (f"{span(task['final_eval_return'], lambda v: f'{v:.0f}')}, {task['reached_seeds']}/{task['seeds']} "
                f">= {task['target']:g} in {span(task['wall_s'], secs, ' s')}")

    recorded = data["rllib_expert"]
    what = (f"BC interoperability, CartPole-v1: our BC on {kilo(recorded['rows'])} rows that RLlib recorded "
            f"(its tabular Parquet, obs packed), RLlib's BC on ours: greedy return of the final policy "
            f"({seed_list(result['seeds'])})")
    rllib = tasks["bc_expert_rllib"]
    errors = [run["error"] for run in rllib["runs"] if isinstance(run.value, dict) and run.optional("error")]
    peer = (f"RLlib BC on our files failed: {errors[0][:200]}" if errors
            else f"RLlib BC on our files: {final(rllib)}")
    return Row(what, f"our BC on RLlib's files: {final(tasks['bc_rllib_data'])}", peer, "", result["command"])


def offline_streaming_row(directory: Path) -> Row:
    """BC streaming a generated data set: peak memory of the driver and every Ray process under it."""
    result = load(directory, "offline_streaming")
    data, bc = result["data"], result["bc"]
    memory = bc["memory_mib"]
    what = (f"BC streaming {kilo(data['rows'])} generated rows ({data['files']} Parquet files, "
            f"{data['bytes_on_disk'] / 2**30:.1f} GiB on disk): peak memory (PSS) of the process and its Ray "
            f"processes, goal < {result['goal_mib'] / 1024:.1f} GiB")
    ours = (f"{result['peak_pss_total_mib'] / 1024:.2f} GiB peak ({memory['baseline']['pss_total'] / 1024:.2f} GiB "
            f"with Ray idle before reading), {kilo(bc['rows_per_s'])} rows/s, rule accuracy "
            f"{pct(bc['accuracy_before'])} -> {pct(bc['accuracy_after'])}")
    ray_start = result.optional("ray")  # how Ray was started, which decides how many worker processes it has
    if ray_start is not None:
        ours += f"; Ray: `{ray_start['start']}`"
    return Row(what, ours, "", "", result["command"])


def offline_bc_to_ppo_row(directory: Path) -> Row:
    """A BC checkpoint starts PPO: the return right after loading, then env steps to the target."""
    result = load(directory, "offline_bc_to_ppo")
    summary = result["summary"]
    seeds = summary["seeds"]
    what = (f"BC then PPO, CartPole-v1: greedy return right after loading the BC checkpoint (goal >= "
            f"{summary['after_loading_goal']:g}), then PPO to {summary['target']:g} ({seed_list(result['seeds'])})")
    ours = (f"after loading {span(summary['after_loading_return'], lambda v: f'{v:.0f}')}, "
            f"{summary['after_loading_reached_seeds']}/{seeds} >= {summary['after_loading_goal']:g}; "
            f"{summary['from_bc_reached_seeds']}/{seeds} to {summary['target']:g} in "
            f"{span(summary['from_bc_env_steps'], kilo)} env steps, lowest evaluation on the way "
            f"{span(summary['from_bc_lowest_eval_return'], lambda v: f'{v:.0f}')}")
    peer = (f"our PPO from scratch: {summary['scratch_reached_seeds']}/{seeds} in "
            f"{span(summary['scratch_env_steps'], kilo)} env steps")
    ratio = times(summary["from_bc_env_steps"]["median"] / summary["scratch_env_steps"]["median"], "the env steps")
    return Row(what, ours, peer, ratio, result["command"])


def league_from_demos_row(directory: Path) -> Row:
    """BC on MCTS games starts a league's main agent: BC alone, then env steps to the target against scratch."""
    result = load(directory, "league_from_demos")

    def side(summary: Node) -> str:
        reached = f"{summary['reached']}/{summary['seeds']} reached"
        if not summary["reached"]:
            return reached + " within the budget"
        text = (f"{reached}; {span(summary['env_steps_to_target'], kilo)} env steps, "
                f"{span(summary['wall_s_to_target'], secs, ' s')}")
        if summary["reached"] < summary["seeds"]:
            text += f"; counting a missed seed's env steps used: {span(summary['env_steps_counted'], kilo)}"
        return text

    bc = result["bc_alone"]
    recorded = result["recorded"]
    what = (f"tic_tac_toe league from demonstrations: BC on {kilo(recorded['games'])} games of OpenSpiel MCTS "
            f"({recorded['mcts_simulations']} simulations) against itself, exported from a league store, then the "
            f"league's PPO main agent from that checkpoint; target {result['target']} ({seed_list(result['seeds'])})")
    ours = (f"BC alone, win-or-draw vs random {span(bc['vs_random']['seat0'], pct)} first, "
            f"{span(bc['vs_random']['seat1'], pct)} second; vs MCTS {span(bc['vs_mcts']['seat0'], pct)} first, "
            f"{span(bc['vs_mcts']['seat1'], pct)} second; league from BC: {side(result['from_bc'])}")
    ratio = result.optional("env_steps_from_bc_over_scratch")
    if ratio is None:
        ratio_text = "none: the league from BC missed on some seed"
    else:  # a seed that missed counts the env steps it used, so then the ratio is an upper bound
        ratio_text = ("at most " if result["ratio_is_upper_bound"] else "") + times(ratio, "the env steps")
    return Row(what, ours, f"the same league from scratch: {side(result['from_scratch'])}", ratio_text,
               result["command"])


def mpe_spread_mappo_row(directory: Path) -> Row:
    """MAPPO (centralized critic, team reward) against independent PPO on mpe2 simple_spread, same env steps."""
    result = load(directory, "mpe_spread_mappo")
    summary, published = result["summary"], result["published"]
    randoms = result["random_policy"]
    random = returns(Node(common.spread([randoms[seed]["onpolicy_episode_reward"] for seed in randoms]),
                          randoms.file))
    ours = (f"MAPPO {returns(summary['mappo']['onpolicy_episode_reward'])}; independent PPO "
            f"{returns(summary['ippo']['onpolicy_episode_reward'])}")
    if summary.optional("ippo_team_reward") is not None:
        team_reward = summary["ippo_team_reward"]["onpolicy_episode_reward"]
        ours += f"; independent critics on the team reward {returns(team_reward)}"
    ours += f"; uniformly random actions {random}"
    figure = published.optional("published_mappo_episode_reward")
    peer = (f"published MAPPO (marlbenchmark/on-policy, 20M env steps): "
            f"{'learning curves only, no number quoted here' if figure is None else f'{figure:g}'}")
    mappo = summary["mappo"]["onpolicy_episode_reward"]["median"]
    gaps = [f"MAPPO {mappo - summary[arm]['onpolicy_episode_reward']['median']:+.1f} over {name} (medians)"
            for arm, name in (("ippo", "independent PPO"), ("ippo_team_reward", "independent critics, team reward"))
            if summary.optional(arm) is not None]
    norm = " with value normalisation" if result["ppo"].optional("value_norm") else ""
    return Row(f"MPE simple_spread_v3 (mpe2), 3 agents, one shared policy{norm}: MAPPO (critic on the team's "
               f"observations, team reward) against independent PPO (own critic, own reward), "
               f"{kilo(result['env_steps_per_run'])} env steps each; on-policy's episode reward (25 steps, team sum) "
               f"of the final policy over {result['eval']['episodes']} episodes ({seed_list(result['seeds'])})",
               ours, peer, "; ".join(gaps), result["command"])


def simple_tag_league_row(directory: Path) -> Row:
    """The simple_tag team league: predators' catch rate and prey's escape rate against random opponents."""
    result = load(directory, "simple_tag_league")
    summary, league = result["summary"], result["league"]
    initial, final = summary["initial"], summary["final"]

    def rise(key: str) -> str:
        return f"{span(initial[key], pct)} at the start, {span(final[key], pct)} after the run"

    return Row(f"team league on mpe2 simple_tag (`marl-arena league run simple_tag`): 3 predators on one shared module "
               f"with a centralized critic against 1 prey, each side a main agent and its snapshots, "
               f"{league['iterations']} iterations of {kilo(league['train_batch_env_steps'])} env steps per side; "
               f"{result['eval']['episodes']} evaluation episodes ({seed_list(result['seeds'])})",
               f"predators' catch rate vs random prey: {rise('catch_rate_vs_random_prey')}; prey's escape rate vs "
               f"random predators: {rise('escape_rate_vs_random_predators')}",
               "no peer (no team league in RLlib or OpenSpiel); baseline: the untrained teams",
               f"catch rate {'rises' if summary['catch_rate_rises'] else 'does not rise'}, escape rate "
               f"{'rises' if summary['escape_rate_rises'] else 'does not rise'} (medians); both on "
               f"{summary['seeds_with_both_rising']}/{len(result['seeds'])} seeds", result["command"])


def dreamerv3_rows(directory: Path) -> list[Row]:
    """DreamerV3 on CartPole (XS, the config's defaults) and as the take_away league's trainer."""
    learning, league = load(directory, "dreamerv3_learning"), load(directory, "dreamerv3_league")
    cartpole, settings = learning["tasks"]["cartpole"], learning["settings"]
    take_away = league["tasks"]["take_away"]
    last = spread((run["last_train_score"] for run in cartpole["runs"]), secs)
    rates = spread((run["updates_per_learner_s"] for run in cartpole["runs"]), secs, " updates/s")
    return [
        Row(target_what(f"DreamerV3 CartPole-v1, model size XS, defaults (training_ratio {settings['training_ratio']:g}, "
                        f"B x T {settings['batch_size_B']} x {settings['batch_length_T']}, imagination from "
                        f"{settings['imagination_starts']} states), {learning['jobs']} seeds at once,", learning,
                        "cartpole", f" within {kilo(cartpole['max_env_steps'])} env steps and "
                                    f"{secs(cartpole['time_budget_s_per_seed'])} s"),
            f"{to_target(cartpole)}; last training return {last}; learner {rates}",
            "RLlib DreamerV3 (XS, training_ratio 1024): about 2.6 s per env step here (issue 18); not run", "",
            learning["command"]),
        Row(f"DreamerV3 (model size {league['settings']['model_size']}) as the take_away league's trainer: greedy "
            f"main agent wins >= {pct(take_away['target'])} against the random bot from both seats, "
            f"{consecutive(take_away['runs'])} checks in a row ({seed_list(league['seeds'])})",
            f"{to_target(take_away)}; lower seat's final win rate "
            f"{spread((run['final_eval_return'] for run in take_away['runs']), pct)}",
            "none: no other library trains a DreamerV3 league player", "", league["command"]),
    ]


def dreamerv3_pendulum_row(directory: Path) -> Row:
    """DreamerV3 on Pendulum-v1 with the settings its script names (chosen on seeds 0-2)."""
    result = load(directory, "dreamerv3_learning_pendulum")
    pendulum, settings = result["tasks"]["pendulum"], result["settings"]
    last = returns(Node(common.spread([run["final_eval_return"] for run in pendulum["runs"]]), "(computed)"))
    return Row(target_what(f"DreamerV3 Pendulum-v1, model size {settings['model_size']}, training_ratio "
                           f"{settings['training_ratio']:g}, actor_lr {settings['actor_lr']:g}, the defaults otherwise, "
                           f"{result['jobs']} seed at a time,", result, "pendulum",
                           f" within {kilo(pendulum['max_env_steps'])} env steps"),
               f"{to_target(pendulum)}; last greedy return {last}",
               "RLlib's tuned example (size S): -200 within 100k env steps (issue 18); not run here", "",
               result["command"])


def dreamerv3_window_row(directory: Path) -> Row:
    """Ours and RLlib's DreamerV3 over the same wall-clock window on CartPole, one after the other."""
    result = load(directory, "dreamerv3_rllib_window")
    settings, ours, rllib = result["settings"], result["ours"], result["rllib"]

    def side(run: Node) -> str:
        replayed = run["updates"] * settings["batch_size_B"] * settings["batch_length_T"] / run["env_steps"]
        return (f"{kilo(run['env_steps'])} env steps ({run['env_steps_per_s']:.1f}/s), {run['updates']} updates "
                f"({run['updates_per_s']:.2f}/s), {replayed:.0f} replayed steps per env step; greedy "
                f"{run['final_eval_return']:.0f} at the end")

    what = (f"DreamerV3 against RLlib's DreamerV3, CartPole-v1, model size {settings['model_size']}, training_ratio "
            f"{settings['training_ratio']:g} on both (RLlib's tuned example: "
            f"{result['rllib_tuned_example_training_ratio']}), B x T {settings['batch_size_B']} x "
            f"{settings['batch_length_T']}, the same {secs(result['window_s'])} s window each, one runner in the "
            f"driver (seed {result['seed']})")
    if rllib.optional("error"):
        return Row(what, side(ours), f"failed: {rllib['error']}", "", result["command"])
    matched = result["at_matched_env_steps"]
    same = (f"; greedy {matched['ours_eval_return']:.0f} at {kilo(matched['ours_eval_env_steps'])} env steps, "
            f"RLlib's count" if matched.optional("ours_eval_return") is not None else "")
    return Row(what, side(ours) + same,
               side(rllib) + " (Ray 2.60's DreamerV3 reads its own training ratio as 0 and updates after every "
                             "env step past its warm-up)",
               times(result["ratios"]["updates_per_s_ours_over_rllib"], "RLlib's updates/s"), result["command"])


ROWS: tuple[Callable[[Path], Row | list[Row]], ...] = (
    ppo_rows, ppo_speed_rows, dqn_rows, dqn_league_row, sac_rows, dreamerv3_rows, dreamerv3_pendulum_row, dreamerv3_window_row, impala_appo_rows, connect_four_row, connect_four_cnn_row, curiosity_maze_row, stateless_cartpole_lstm_row, offline_row, offline_cql_row,
    offline_interop_row, offline_streaming_row, offline_bc_to_ppo_row, league_from_demos_row,
    mpe_spread_mappo_row, simple_tag_league_row, killed_runner_row, gpu_row, sampling_rows, external_throughput_rows, external_cartpole_row, external_league_row,
    adapter_rows, selfplay_rows, league_rows, league_psro_row, league_concurrency_row, snapshot_memory_row,
    rating_calibration_row, store_scale_row, taxi_row, dashboard_row,
)


# ---------------------------------------------------------------------- table and README
def render(directory: Path = common.RESULTS_DIR, rows: Sequence[Callable[[Path], Row | list[Row]]] = ROWS) -> str:
    """The table, as markdown, from the result files in ``directory``."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for make in rows:
        made = make(directory)
        lines += [row.markdown() for row in (made if isinstance(made, list) else [made])]
    return "\n".join(lines) + "\n"


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise ValueError(f"README.md must hold {BEGIN} and then {END}, once each")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md's table differs; write nothing")
    args = parser.parse_args(argv)
    readme = README.read_text(encoding="utf-8")
    rendered = with_table(readme, render())
    if args.check:
        if rendered != readme:
            print("README.md's benchmark table differs from benchmarks/results/*.json: "
                  "run python benchmarks/render_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
