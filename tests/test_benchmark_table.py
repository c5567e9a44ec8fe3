"""The README's benchmark table is the rendering of the committed benchmarks/results/*.json.

Editing a figure in the README, or a result file without rerendering, fails here; so does
a row whose result file lacks a field it needs, with an error that names the file and field.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import their helpers as `common`

import render_table  # noqa: E402


def test_readme_table_is_the_rendering_of_the_results():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render_table.with_table(readme, render_table.render()) == readme, (
        "README.md's benchmark table differs from benchmarks/results/*.json: "
        "run python benchmarks/render_table.py")


def test_check_mode_agrees():
    assert render_table.main(["--check"]) == 0


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A copy of the committed result files, to break one of them."""
    copy = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", copy)
    return copy


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_a_missing_field_is_named(results: Path):
    _edit(results / "dqn_learning.json", lambda d: d["tasks"]["cartpole"]["runs"][1].pop("wall_s"))
    with pytest.raises(render_table.MissingField,
                       match=r"dqn_learning\.json has no field 'tasks\.cartpole\.runs\.1\.wall_s'"):
        render_table.render(results)


def test_a_null_field_is_missing(results: Path):
    _edit(results / "league_exploitability.json", lambda d: d["games"]["kuhn_poker"]["summary"].update(
        league_pool_nash=None))
    with pytest.raises(render_table.MissingField, match=r"summary\.league_pool_nash"):
        render_table.render(results, rows=[render_table.league_rows])


def test_a_missing_file_is_named(results: Path):
    (results / "taxi_first_page.json").unlink()
    with pytest.raises(render_table.MissingField, match=r"taxi_first_page\.json does not exist"):
        render_table.render(results, rows=[render_table.taxi_row])


def test_the_markers_must_be_there():
    with pytest.raises(ValueError, match="benchmark-table:begin"):
        render_table.with_table("# no table here\n", "| a |\n")


def test_rewriting_replaces_only_the_table():
    readme = f"before\n{render_table.BEGIN}\nold\n{render_table.END}\nafter\n"
    assert render_table.with_table(readme, "new\n") == f"before\n{render_table.BEGIN}\nnew\n{render_table.END}\nafter\n"


def test_a_throughput_only_rerun_replaces_only_the_throughput_row(results: Path):
    full = json.loads((results / "impala_appo.json").read_text(encoding="utf-8"))
    rerun = {"command": "python benchmarks/impala_appo.py --tasks throughput --out",
             "settings": full["settings"], "tasks": {"throughput": full["tasks"]["throughput"]}}
    rerun["tasks"]["throughput"]["env_steps_per_s_ours_over_rllib"] = 9.87
    (results / "impala_appo_throughput.json").write_text(json.dumps(rerun), encoding="utf-8")
    before = render_table.render(rows=[render_table.impala_appo_rows]).splitlines()
    after = render_table.render(results, rows=[render_table.impala_appo_rows]).splitlines()
    changed = [(old, new) for old, new in zip(before, after) if old != new]
    assert len(before) == len(after) and len(changed) == 1
    assert "9.87x the env steps/s" in changed[0][1] and "--tasks throughput" in changed[0][1]


def test_a_cartpole_and_peers_rerun_replaces_only_the_two_cartpole_rows(results: Path):
    full = json.loads((results / "impala_appo.json").read_text(encoding="utf-8"))
    rerun = {"command": "python benchmarks/impala_appo.py --tasks cartpole rllib --out", "seeds": full["seeds"],
             "tasks": {k: v for k, v in full["tasks"].items() if k.startswith("cartpole_") and "killed" not in k},
             "ratios": full["ratios"]}
    for key in ("cartpole_appo", "cartpole_impala"):
        rerun["ratios"][key]["wall_s_ours_over_rllib"] = 0.0123
    (results / "impala_appo_cartpole_rllib.json").write_text(json.dumps(rerun), encoding="utf-8")
    before = render_table.render(rows=[render_table.impala_appo_rows]).splitlines()
    after = render_table.render(results, rows=[render_table.impala_appo_rows]).splitlines()
    changed = [(old, new) for old, new in zip(before, after) if old != new]
    assert len(before) == len(after) and len(changed) == 2
    assert all("0.01x the time" in new and "--tasks cartpole rllib" in new for _, new in changed)


def test_a_partial_impala_appo_run_is_written_to_its_own_file():
    import impala_appo

    assert impala_appo.result_name(None) == impala_appo.result_name(list(impala_appo.TASKS)) == "impala_appo"
    assert impala_appo.result_name(["killed", "throughput"]) == "impala_appo_throughput_killed"
