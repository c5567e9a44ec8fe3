"""The marl-arena command line: train with checkpoints, evaluate them, clear errors."""

from __future__ import annotations

import json
import logging
import subprocess

import pytest

from marl_arena.cli import main
from marl_arena_dashboard import LEAGUE_DIR_ENV, READ_ONLY_ENV

SMALL = ["--config", "train_batch_size_per_learner=256", "minibatch_size=64", "num_epochs=1", "--fcnet-hiddens", "16"]


def test_train_writes_checkpoints_and_evaluate_reads_them(tmp_path, capsys):
    rc = main(["train", "--env", "CartPole-v1", "--stop-iters", "2", "--checkpoint-dir", str(tmp_path),
               "--checkpoint-freq", "1", "--seed", "0", "--quiet", *SMALL])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.count("iter ") == 2 and "steps/s" in out
    assert "evaluation over 10 episodes" in out
    assert {p.name for p in tmp_path.iterdir()} == {"iter_000001", "iter_000002", "final"}

    assert main(["evaluate", str(tmp_path / "final"), "--episodes", "3"]) == 0
    evaluation = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluation["num_episodes"] == 3 and evaluation["episode_return_mean"] > 0


def test_unreached_stop_reward_exits_nonzero(capsys):
    rc = main(["train", "--env", "CartPole-v1", "--stop-reward", "1000", "--stop-iters", "1", "--quiet", *SMALL])
    assert rc == 1
    assert "stop reward 1000.0 not reached" in capsys.readouterr().err


def test_unknown_env_is_a_clear_error(capsys):
    assert main(["train", "--env", "CartPol-v1", "--stop-iters", "1"]) == 2
    assert "Did you mean 'CartPole-v1'" in capsys.readouterr().err


def test_unknown_config_field_is_named():
    with pytest.raises(SystemExit, match="no field 'learning_rate'"):
        main(["train", "--env", "CartPole-v1", "--stop-iters", "1", "--config", "learning_rate=0.1"])


def test_train_needs_a_stop_condition():
    with pytest.raises(SystemExit, match="stop condition"):
        main(["train", "--env", "CartPole-v1"])


def test_league_run_then_status_from_the_store(tmp_path, capsys):
    directory = str(tmp_path / "league")
    assert main(["league", "run", "take_away", "--dir", directory, "--iterations", "3", "--quiet"]) == 0
    run_out = capsys.readouterr().out
    assert "main_0" in run_out and "matches stored in" in run_out
    assert main(["league", "status", directory]) == 0
    status = capsys.readouterr().out
    assert status.splitlines()[-1] == run_out.splitlines()[-1].replace(" stored in " + directory, "")
    assert _leaderboard_rows(status) == _leaderboard_rows(run_out)  # the store tells what the live run showed


def _leaderboard_rows(text: str) -> dict[str, list[str]]:
    """Player -> (kind, elo, bt) from the last leaderboard table in ``text``."""
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 9 and fields[1] in ("main_agent", "scripted", "snapshot"):
            rows[fields[0]] = fields[1:4]
    return rows


def test_league_run_prints_clean_lines_and_the_final_leaderboard_once(tmp_path, capsys):
    """Without a terminal (a pipe, a log file) no progress-bar redraws go between the lines."""
    directory = str(tmp_path / "league")
    assert main(["league", "run", "take_away", "--dir", directory, "--iterations", "4", "--leaderboard-every", "2"]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err
    lines = captured.out.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("iter ")] == ["1", "2", "3", "4"]
    assert sum(line.startswith("player ") for line in lines) == 2  # after iteration 2, and the final one


def test_league_errors_are_clear(tmp_path, capsys):
    assert main(["league", "run", "chess"]) == 2
    assert "ready-made leagues: take_away" in capsys.readouterr().err
    assert main(["league", "status", str(tmp_path / "none")]) == 2
    assert "No league store" in capsys.readouterr().err


# ---------------------------------------------------------------------- dashboard
@pytest.fixture
def launched(monkeypatch):
    """What ``marl-arena dashboard`` would run: ``subprocess.call`` records the command instead of serving."""
    pytest.importorskip("streamlit")
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda command, env: calls.append((command, env)) or 0)
    return calls


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_dashboard_listens_on_this_machine_only_by_default(tmp_path, launched, caplog):
    assert main(["dashboard", str(tmp_path)]) == 0
    (command, env), = launched
    assert _option(command, "--server.address") == "127.0.0.1" and _option(command, "--server.port") == "8501"
    assert env[LEAGUE_DIR_ENV] == str(tmp_path.resolve()) and READ_ONLY_ENV not in env
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_dashboard_host_exposes_it_with_a_warning_naming_the_address(tmp_path, launched, caplog):
    assert main(["dashboard", str(tmp_path), "--host", "0.0.0.0", "--port", "9000"]) == 0
    (command, _), = launched
    assert _option(command, "--server.address") == "0.0.0.0"
    warning, = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "listens on 0.0.0.0:9000" in warning and "--read-only" in warning and "\n" not in warning


def test_dashboard_read_only_tells_the_app(tmp_path, launched):
    assert main(["dashboard", str(tmp_path), "--read-only"]) == 0
    (command, env), = launched
    assert env[READ_ONLY_ENV] == "1" and _option(command, "--server.address") == "127.0.0.1"
