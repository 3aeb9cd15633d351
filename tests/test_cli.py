"""The command line end to end: JSON contract, saved results, verification,
bounds, infeasible instances and time-outs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mapcert
from mapcert.formulations.tiling import solve as solve_module
from mapcert.solvers.outcome import SolverOutcome

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "vgg16_conv3_2_64KiB.yaml"
REQUIRED = {"format", "family", "status", "objective", "objective_name", "unit", "best_bound", "lower_bound",
            "bounds", "gap", "solution", "metrics", "method", "wall_time_s", "certificate", "heuristics", "instance"}


def test_solve_json_has_the_design_fields(cli):
    code, stdout, _ = cli("solve", str(EXAMPLE), "--json")
    assert code == 0
    data = json.loads(stdout)
    assert REQUIRED <= set(data)
    assert data["status"] == "optimal" and data["gap"] == 0.0
    assert data["objective"] >= data["lower_bound"]
    assert all(c["passed"] for c in data["certificate"]["checks"])
    assert data["heuristics"][0]["method"] == "paper-dataflow"
    assert data["heuristics"][0]["objective"] >= data["objective"]


def test_solve_prints_tables(cli):
    code, stdout, _ = cli("solve", str(EXAMPLE), "--method", "milp")
    assert code == 0
    for text in ("OPTIMAL", "on-chip tile", "off-chip traffic", "bounds", "paper-dataflow", "functional"):
        assert text in stdout


def test_saved_result_verifies_and_is_not_overwritten(cli, tmp_path):
    out = tmp_path / "result.yaml"
    assert cli("solve", str(EXAMPLE), "-o", str(out), "--no-functional")[0] == 0
    saved = out.read_text()
    code, _, stderr = cli("solve", str(EXAMPLE), "-o", str(out))
    assert code == 2 and "--force" in stderr
    assert out.read_text() == saved
    code, stdout, _ = cli("verify", str(out), "--json")
    assert code == 0 and json.loads(stdout)["verified"]


def test_an_input_file_is_never_the_output_even_with_force(cli, tmp_path):
    """`-o` (or `--export`) naming the instance being solved would replace
    the user's instance with a result: refused before solving, --force or not."""
    instance = tmp_path / "mine.yaml"
    instance.write_text(EXAMPLE.read_text())
    for args in (["-o", str(instance), "--force"], ["--export", "timeloop", str(instance), "--force"]):
        code, _, stderr = cli("solve", str(instance), *args)
        assert code == 2 and "is an input of this command" in stderr, stderr
        assert instance.read_text() == EXAMPLE.read_text()


def test_verify_catches_a_tampered_result(cli, tmp_path):
    out = tmp_path / "result.yaml"
    cli("solve", str(EXAMPLE), "-o", str(out), "--no-functional")
    data = yaml.safe_load(out.read_text())
    data["objective"] *= 0.9
    out.write_text(yaml.safe_dump(data))
    code, stdout, _ = cli("verify", str(out), "--json")
    assert code == 1
    failed = {c["name"] for c in json.loads(stdout)["checks"] if not c["passed"]}
    assert "objective: equals evaluate of the solution" in failed
    # without --json, the failures are repeated under the verdict, where the reader looks
    code, stdout, _ = cli("verify", str(out), "--methods", "cpsat")
    verdict = stdout[stdout.index("NOT VERIFIED"):]
    assert code == 1 and f"{len(failed)} of" in verdict and "objective: equals evaluate of the solution" in verdict


def test_verify_refuses_a_fractional_tile(cli, tmp_path):
    out = tmp_path / "result.yaml"
    cli("solve", str(EXAMPLE), "-o", str(out), "--no-functional", "--no-heuristics")
    data = yaml.safe_load(out.read_text())
    data["solution"]["tiles"]["C"] = data["solution"]["tiles"]["C"] + 0.5
    out.write_text(yaml.safe_dump(data))
    code, stdout, _ = cli("verify", str(out), "--json", "--methods", "cpsat")
    failed = [c["name"] for c in json.loads(stdout)["checks"] if not c["passed"]]
    assert code == 1 and any(name.startswith("solution") for name in failed), failed


def test_verify_rejects_a_non_result(cli):
    code, _, stderr = cli("verify", str(EXAMPLE))
    assert code == 2 and "not a mapcert result" in stderr


def test_bound_command(cli):
    code, stdout, _ = cli("bound", str(EXAMPLE), "--json")
    data = json.loads(stdout)
    bounds = {b["name"]: b for b in data["bounds"]}
    assert code == 0 and bounds["hong_kung"]["value"] >= bounds["compulsory"]["value"] > 0
    assert bounds["hong_kung"]["rigorous"] and not bounds["seed"]["rigorous"]


TINY_NETWORK = """family: tiling
workload:
  name: tiny
  layers:
    conv1: {op: conv2d, dims: {M: 16, C: 3, P: 16, Q: 16, R: 3, S: 3}}
    conv2: {op: conv2d, dims: {M: 16, C: 16, P: 16, Q: 16, R: 3, S: 3}, inputs: [conv1]}
    conv3: {op: conv2d, dims: {M: 16, C: 16, P: 16, Q: 16, R: 3, S: 3}, inputs: [conv2]}
hardware:
  levels:
    - {name: DRAM}
    - {name: GLB, capacity: 2 KiB}
objective: offchip_traffic
"""


def test_bound_of_a_network_is_one_table_with_the_network_totals(cli, tmp_path):
    """A network's bounds: a row per distinct layer and a column per bound,
    the totals weighed by each layer's count, each meaning said once."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_NETWORK)
    code, stdout, _ = cli("bound", str(path), "--json")
    data = json.loads(stdout)
    assert code == 0 and [(p["name"], p["count"]) for p in data["parts"]] == [("tiny.conv1", 1), ("tiny.conv2", 2)]
    for name, total in data["total"]["bounds"].items():
        assert total == sum(p["count"] * b["value"] for p in data["parts"] for b in p["bounds"] if b["name"] == name)
    best = sum(p["count"] * max(b["value"] for b in p["bounds"] if b["rigorous"]) for p in data["parts"])
    assert data["total"]["best_rigorous"] == best >= max(data["total"]["bounds"].values())
    code, stdout, _ = cli("bound", str(path))
    assert code == 0
    header = next(line for line in stdout.splitlines() if line.strip().startswith("layer"))
    assert header.split() == ["layer", "x", *data["total"]["bounds"], "best", "rigorous"]
    total_row = next(line for line in stdout.splitlines() if "network (3 layers)" in line)
    assert total_row.split()[-1] == f"{best:,.0f}"
    meaning = data["parts"][0]["bounds"][0]["meaning"]
    assert stdout.count(meaning) == 1


def test_a_network_table_names_each_layer_and_its_shape(cli, tmp_path):
    """Each distinct layer's row gives its name within the network (the
    header names the network) and its shape in the peers' dimension names,
    so a user can check what was read, from an ONNX model say."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_NETWORK.replace("conv2: {op: conv2d, dims: {M: 16,", "conv2: {op: conv2d, stride: 2, "
                                         "dims: {M: 16,").replace("C: 16, P: 16, Q: 16, R: 3, S: 3}, inputs: [conv1]",
                                                                  "C: 16, P: 8, Q: 8, R: 3, S: 3}, inputs: [conv1]"))
    code, stdout, stderr = cli("solve", str(path), "-t", "20", "--no-heuristics")
    assert code == 0, stderr
    rows = {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip().startswith("conv")}
    assert rows["conv1"][1:8] == ["M16", "C3", "P16", "Q16", "R3", "S3", "1"], rows
    assert rows["conv2"][1:9] == ["M16", "C16", "P8", "Q8", "R3", "S3", "/2", "1"], rows
    assert rows["conv3"][1:8] == ["M16", "C16", "P16", "Q16", "R3", "S3", "1"], rows
    assert "tiny.conv1" not in stdout


def test_infeasible_json_has_a_status(cli):
    bad = Path(__file__).parent / "bad_instances" / "28_infeasible_tiny_buffer.yaml"
    code, stdout, _ = cli("solve", str(bad), "--json")
    data = json.loads(stdout)
    assert code == 2 and data["status"] == "infeasible" and "smallest footprint" in data["message"]


def test_an_infeasible_result_saved_with_output_is_announced(cli, tmp_path):
    """`solve -o` keeps the infeasibility as a result (verify re-checks it);
    the user is told it was written, or a later run meets an unexplained
    "exists; not overwritten"."""
    bad = Path(__file__).parent / "bad_instances" / "28_infeasible_tiny_buffer.yaml"
    saved = tmp_path / "r.yaml"
    code, _, stderr = cli("solve", str(bad), "-o", str(saved))
    assert code == 2 and saved.exists() and f"saved to {saved}" in " ".join(stderr.split())
    assert "no feasible solution" in stderr


def test_time_out_returns_feasible_with_gap(monkeypatch):
    """A solver stopped by its time limit yields the best mapping it has,
    status feasible, and the gap to its bound; never 'optimal'."""
    problem = mapcert.load(EXAMPLE)
    real = solve_module.solve_cpsat

    def interrupted(model, read, time_limit, workers=0):
        outcome = real(model, read, time_limit, workers)
        return SolverOutcome("cpsat", False, False, outcome.objective, outcome.bound * 0.5, 0.01,
                             outcome.values, "FEASIBLE")

    monkeypatch.setattr(solve_module, "solve_cpsat", interrupted)
    result = mapcert.solve(problem, functional=False)
    assert result.status == "feasible"
    assert 0 < result.gap < 1
    assert result.best_bound >= result.lower_bound
    assert result.to_dict()["gap"] == result.gap


def test_bad_option_values(cli):
    assert cli("solve", str(EXAMPLE), "--method", "gurobi")[0] == 2
    assert cli("solve", str(EXAMPLE), "--time-limit", "-1")[0] == 2


def test_help_explains_commands(cli):
    code, stdout, _ = cli("--help")
    assert code == 0 and "solve" in stdout and "verify" in stdout and "bound" in stdout


def test_module_entry_point_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: tiling\nworkload: vgg16.conv3_2\nhardware: {levels: [{name: DRAM}]}\n")
    proc = subprocess.run([sys.executable, "-m", "mapcert", "solve", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_time_out_without_any_mapping_falls_back_to_the_heuristic(monkeypatch):
    problem = mapcert.load(EXAMPLE)

    def nothing(model, read, time_limit, workers=0):
        return SolverOutcome("cpsat", False, False, None, 1000.0, time_limit, None, "UNKNOWN")

    monkeypatch.setattr(solve_module, "solve_cpsat", nothing)
    result = mapcert.solve(problem, functional=False)
    assert result.status == "feasible"
    assert result.solution is not None and result.objective > 0
    assert "optimality not proved" in result.message
    assert result.best_bound == result.lower_bound  # the solver's 1000 B is weaker than the rigorous bound


@pytest.mark.slow  # about 8 s; tests/test_verify_examples.py solves the same example again in the default run
def test_the_crossbar_example_through_the_cli(cli):
    root = Path(__file__).resolve().parents[1] / "examples"
    code, stdout, _ = cli("solve", str(root / "resnet34_crossbar.yaml"))
    assert code == 0 and "OPTIMAL" in stdout and "kernel split" in stdout and "genetic" in stdout


def test_pim_families_through_the_cli(cli):
    root = Path(__file__).resolve().parents[1] / "examples"
    code, stdout, _ = cli("solve", str(root / "mobilenetv2_pairing.yaml"), "--json", "--method", "cpsat")
    data = json.loads(stdout)
    assert code == 0 and data["status"] == "optimal" and REQUIRED <= set(data)
    assert all(c["passed"] for c in data["certificate"]["checks"])
    code, _, stderr = cli("solve", str(root / "mobilenetv2_pairing.yaml"), "--method", "bisection")
    assert code == 2 and "bisection" in stderr
    code, stdout, _ = cli("bound", str(root / "resnet34_crossbar.yaml"), "--json")
    assert code == 0 and any(b["rigorous"] and b["value"] > 0 for b in json.loads(stdout)["bounds"])


COMPARED = [pytest.param("vgg16_conv3_2_64KiB.yaml", "tiling", marks=pytest.mark.slow),
            pytest.param("mobilenetv2_pairing.yaml", "pairing", marks=pytest.mark.slow),
            pytest.param("resnet34_crossbar.yaml", "crossbar", marks=pytest.mark.slow)]


@pytest.mark.parametrize("example, family", COMPARED)
def test_compare_scores_every_method_against_the_optimum(cli, example, family):
    root = Path(__file__).resolve().parents[1] / "examples"
    code, stdout, _ = cli("compare", str(root / example), "--json")
    data = json.loads(stdout)
    assert code == 0 and data["family"] == family and data["status"] == "optimal"
    exact = [r for r in data["rows"] if r["kind"] == "exact"]
    assert len(exact) >= 2 and all(r["objective"] == data["optimum"] for r in exact)
    for row in data["rows"]:
        if row["kind"] == "heuristic" and row["gap"] is not None:
            assert row["gap"] >= 0


def test_compare_refuses_an_unknown_method(cli):
    root = Path(__file__).resolve().parents[1] / "examples"
    code, _, stderr = cli("compare", str(root / "mobilenetv2_pairing.yaml"), "--methods", "milp,simplex")
    assert code == 2 and "simplex" in stderr


def test_compare_on_an_infeasible_instance_exits_2(cli):
    bad = Path(__file__).parent / "bad_instances" / "28_infeasible_tiny_buffer.yaml"
    code, stdout, _ = cli("compare", str(bad), "--json")
    assert code == 2 and json.loads(stdout)["status"] == "infeasible"


def test_an_output_in_a_missing_folder_is_refused_before_the_work(tmp_path):
    """plot and solve name the missing folder (exit 2) instead of failing after the work."""
    from .helpers import run_cli

    missing = tmp_path / "no" / "such"
    example = str(Path(__file__).resolve().parents[1] / "examples" / "resnet50_partition_512KiB.yaml")
    for args in (("plot", example, "-o", str(missing / "p.png")), ("solve", example, "-o", str(missing / "r.yaml"))):
        code, _, stderr = run_cli(*args)
        assert code == 2 and f"cannot write: the folder {missing} does not exist" in stderr, stderr


def test_a_saved_result_where_an_instance_goes_is_one_line(tmp_path):
    """solve or plot given a result (instead of its instance) say so in one line."""
    from .helpers import run_cli

    saved = tmp_path / "r.yaml"  # the head of a result: its format, the instance it embeds, its certificate
    instance = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "mobilenetv2_pairing.yaml")
                              .read_text())
    saved.write_text(yaml.safe_dump({"format": "mapcert-result/2", "family": "pairing", "status": "optimal",
                                     "instance": instance, "certificate": {"checks": []}}))
    for command in ("solve", "plot"):
        code, _, stderr = run_cli(command, str(saved))
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and "a saved result (mapcert solve -o), not an instance" in lines[0]


def test_compare_lists_a_note_shared_by_rows_once():
    """When the notes do not fit beside the table they are listed below it,
    one number per distinct note, so that every listed number is used."""
    from io import StringIO

    from rich.console import Console

    from mapcert.cli.render import render_comparison
    from mapcert.formulations.family import Status
    from mapcert.pipeline import Comparison, Row

    note = "39 candidate subgraphs, every one checked against the buffer size of the instance"
    rows = [Row(method, "exact", Status.OPTIMAL, 18_737_459.0, 0.01, gap=0.0, note=note, functional="passed")
            for method in ("milp", "cpsat")] + [Row("greedy", "heuristic", Status.FEASIBLE, 2e7, 0.01, 0.07)]
    out = StringIO()
    render_comparison(Console(file=out, width=100, emoji=False), Comparison("partition", "B", "ema", rows, 18_737_459.0))
    text = out.getvalue()
    assert text.count("[1]") == 3 and "[2]" not in text and text.count(note) == 1, text


def test_compare_keeps_every_number_column_beside_a_long_mapping_name():
    """A mapping file with a long name breaks over lines in the method
    column; the objective and the gap stay on the page."""
    from io import StringIO

    from rich.console import Console

    from mapcert.cli.render import render_comparison
    from mapcert.formulations.family import Status
    from mapcert.pipeline import Comparison, Row

    long = "mapping: " + "versacore_mapping_1_32_32_os_with_a_very_long_descriptive_name" * 2 + ".yaml"
    rows = [Row("cpsat", "exact", Status.OPTIMAL, 1234.0, 0.5, gap=0.0, functional="passed"),
            Row(long, "user", Status.FEASIBLE, 64_290.0, 0.5, gap=51.1, functional="passed")]
    out = StringIO()
    render_comparison(Console(file=out, width=110, emoji=False), Comparison("tiling", "pJ", "energy", rows, 1234.0))
    text = out.getvalue()
    assert "above optimum" in text and "5110.0%" in text and "64,290" in text, text


def test_compare_without_the_functional_model(cli, tmp_path):
    """``--no-functional`` skips each row's functional run (its time on a
    large layer); the column then says '-'."""
    path = tmp_path / "one.yaml"
    path.write_text("family: tiling\nworkload: {op: conv2d, dims: {M: 16, C: 8, P: 8, Q: 8, R: 3, S: 3}}\n"
                    "hardware: {levels: [{name: DRAM}, {name: GLB, capacity: 2 KiB}]}\n")
    code, stdout, stderr = cli("compare", str(path), "--methods", "cpsat,paper-dataflow", "--json", "--no-functional")
    rows = json.loads(stdout)["rows"]
    assert code == 0 and rows and all(row["functional"] == "-" for row in rows), stderr
    code, stdout, _ = cli("compare", str(path), "--methods", "cpsat", "--json")
    assert json.loads(stdout)["rows"][0]["functional"] == "passed"


def test_a_network_table_with_long_layer_names_keeps_every_number_whole():
    """Names as long as a framework's module paths break over lines; the
    objective, the gap, the ratio and the time stay whole at 80 columns."""
    from rich.console import Console

    import mapcert
    from mapcert.cli import render
    from mapcert.instances import load_text

    long = "features.block2.dilated_context_module.conv_dilation4_with_a_long_name"
    problem = load_text(TINY_NETWORK.replace("conv2:", f"{long}:").replace("inputs: [conv2]", f"inputs: [{long}]"))
    result = mapcert.solve(problem, functional=False, heuristics=False)
    console = Console(record=True, width=80)
    render.render_network(console, result)
    text = console.export_text()
    for part in result.parts:
        r = part.result
        for cell in (render.number(r.objective), render.percent(r.gap), f"{r.objective / r.lower_bound:.3f}"):
            assert cell in text, (cell, text)


def test_a_misspelt_field_in_a_written_mapping_is_refused_at_its_line(cli, tmp_path):
    """A hand-written mapping is read as strictly as an instance: 'ordr'
    would otherwise leave the level's loops in the default order and score
    another mapping than the one written."""
    example = Path(__file__).resolve().parents[1] / "examples" / "resnet18_layer4_eyeriss.yaml"
    saved = tmp_path / "r.yaml"
    code, _, stderr = cli("solve", str(example), "-t", "20", "--no-heuristics", "--no-functional", "-o", str(saved))
    assert code == 0, stderr
    solution = yaml.safe_load(saved.read_text())["solution"]
    level = next(lv for lv in solution["levels"] if lv.get("order"))
    level["ordr"] = level.pop("order")
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"solution": solution}, sort_keys=False))
    code, _, stderr = cli("compare", str(example), "--methods", "paper-dataflow", "--mapping", str(mine))
    assert code == 2 and f"level {level['name']}: unknown field 'ordr'; did you mean 'order'?" in stderr, stderr
    del level["ordr"]
    solution["spatail"] = solution.pop("spatial")
    mine.write_text(yaml.safe_dump({"solution": solution}, sort_keys=False))
    code, _, stderr = cli("compare", str(example), "--methods", "paper-dataflow", "--mapping", str(mine))
    assert code == 2 and "solution.spatail: unknown field 'spatail'; did you mean 'spatial'?" in stderr, stderr


def test_a_misspelt_field_in_a_two_level_mapping_is_refused(cli, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("solution:\n  tiles: {N: 1, M: 1, C: 128, P: 14, Q: 28, R: 3, S: 3}\n  ordr: [N, C, P, Q, M]\n")
    code, _, stderr = cli("compare", str(EXAMPLE), "--methods", "paper-dataflow", "--mapping", str(mine))
    assert code == 2 and f"{mine}:3: solution.ordr: unknown field 'ordr'; did you mean 'order'?" in stderr, stderr


def test_a_two_level_mapping_off_the_space_is_scored_infeasible_and_a_short_order_completed(cli, tmp_path):
    """A partial tile in the divisors space is a row that says so (the other
    methods still run); loops left out of an order run outside it, as in a
    hierarchy's mapping; a loop named that does not exist, or twice, is
    named."""
    mine = tmp_path / "mine.yaml"
    mine.write_text("solution:\n  tiles: {N: 1, M: 5, C: 128, P: 14, Q: 28}\n  order: [C, P, Q, M]\n")
    code, stdout, stderr = cli("compare", str(EXAMPLE), "--methods", "paper-dataflow", "--mapping", str(mine),
                               "--json")
    assert code == 0, stderr
    row = next(r for r in json.loads(stdout)["rows"] if r["kind"] == "user")
    assert row["status"] == "infeasible"
    assert "tile of M = 5 does not divide 256: a partial tile, outside the divisors space" in row["note"]
    mine.write_text(mine.read_text().replace("M: 5", "M: 1"))
    code, stdout, stderr = cli("compare", str(EXAMPLE), "--methods", "paper-dataflow", "--mapping", str(mine),
                               "--json")
    row = next(r for r in json.loads(stdout)["rows"] if r["kind"] == "user")
    full = tmp_path / "full.yaml"
    full.write_text(mine.read_text().replace("[C, P, Q, M]", "[N, G, C, P, Q, M]"))
    _, written, _ = cli("compare", str(EXAMPLE), "--methods", "paper-dataflow", "--mapping", str(full), "--json")
    same = next(r for r in json.loads(written)["rows"] if r["kind"] == "user")
    assert code == 0 and row["status"] == "feasible" and row["objective"] == same["objective"]
    mine.write_text(mine.read_text().replace("[C, P, Q, M]", "[C, X, P, Q, P]"))
    code, _, stderr = cli("compare", str(EXAMPLE), "--methods", "paper-dataflow", "--mapping", str(mine))
    assert code == 2 and "order names X, not a DRAM loop" in stderr and "; P twice" in stderr, stderr
    assert f"{mine}:3: solution.order: " in stderr  # at the order's line
    mine.write_text("solution:\n  tiles: {N: 1, M: 1, C: 128, P: 14, Q: 280}\n")
    code, _, stderr = cli("compare", str(EXAMPLE), "--methods", "paper-dataflow", "--mapping", str(mine))
    assert code == 2 and f"{mine}:2: solution.tiles.Q: tile of Q must be between 1 and 56, got 280" in stderr


def test_a_file_of_another_kind_is_named_with_what_to_do(cli, tmp_path):
    """An instance given to verify, a pairing without its unpaired list, and
    a network's result given as one layer's mapping each say what to give."""
    code, _, stderr = cli("verify", str(EXAMPLE))
    assert code == 2 and "looks like an instance" in stderr and "mapcert solve" in stderr
    pairing = tmp_path / "pairing.yaml"
    pairing.write_text("family: pairing\nworkload: {name: t, dims: {M: 4, C: 2, R: 2}}\n"
                       "hardware: {preset: ddc-sram, rows: 16, columns: 64}\nweights: {generate: {seed: 4}}\n")
    mine = tmp_path / "mine.yaml"
    mine.write_text("pairs: [[0, 1], [2, 3]]\n")
    code, _, stderr = cli("compare", str(pairing), "--mapping", str(mine))
    assert code == 2 and "missing unpaired" in stderr and "unpaired: []" in stderr
    network = tmp_path / "net.yaml"
    network.write_text("family: tiling\nworkload: lenet5\nhardware: chen2020-3level\nobjective: energy\n")
    result = tmp_path / "net.result.yaml"
    assert cli("solve", str(network), "-o", str(result), "--no-functional", "--no-heuristics", "--jobs", "1")[0] == 0
    layer = tmp_path / "layer.yaml"
    layer.write_text("family: tiling\nworkload: lenet5.conv2\nhardware: chen2020-3level\nobjective: energy\n")
    code, _, stderr = cli("compare", str(layer), "--mapping", str(result))
    assert code == 2 and "a network's result holds one solution per distinct layer" in stderr


def test_a_closed_pipe_stops_quietly_with_its_own_status(tmp_path):
    """`mapcert solve x | head`: the reader closes the pipe; mapcert stops
    without a traceback, with the status a shell gives (141), not the 1 of a
    failed check, and the result file given with -o is written all the same."""
    saved = tmp_path / "result.yaml"
    process = subprocess.Popen([sys.executable, "-m", "mapcert", "solve", str(EXAMPLE.parent / "small_three_level.yaml"),
                                "--no-heuristics", "-o", str(saved)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before anything is written: every write fails
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, stderr
    assert stderr == ""
    assert yaml.safe_load(saved.read_text())["status"] == "optimal"


def test_a_comparison_at_80_columns_keeps_every_column_and_note_marker():
    """At 80 columns the kind of each row goes under its method's name, with
    the marker of its note, so that no header is cut and every note below
    has its marker."""
    from rich.console import Console

    from mapcert.cli import render
    from mapcert.formulations.registry import family_of
    from mapcert.pipeline import compare

    problem = mapcert.load(EXAMPLE.parent / "small_three_level.yaml")
    family = family_of(problem)
    outside = family.solution_from_dict(problem, {
        "levels": [{"name": "DRAM", "factors": {"M": 4, "P": 4}}, {"name": "GLB", "factors": {"C": 4, "P": 2}},
                   {"name": "RF", "factors": {"Q": 2, "R": 3}}], "spatial": {"rows": {}, "cols": {}}})
    comparison = compare(problem, ["cpsat", "greedy-largest-tile"], 30,
                         {"mapping: a_rather_long_file_name.yaml": outside}, functional=False)
    console = Console(record=True, width=80)
    render.render_comparison(console, comparison)
    text = console.export_text()
    header = text.split("─")[0].split("certified optimum")[1].split()
    assert sorted(header) == sorted(["method", "status", "objective", "above", "optimum", "time", "functional",
                                     "30,960"])
    assert "user [1]" in text  # the note's marker follows the row's kind
    assert "[1]" in text.split("\n[1] ")[0] and "\n[1] RF: tiles of 15 B" in text and "factors of P multiply" in text
    assert all(kind in text for kind in ("exact", "heuristic", "user"))
    wide = Console(record=True, width=140)
    render.render_comparison(wide, comparison)
    assert "kind" in wide.export_text()


def test_a_result_named_json_is_written_as_json_and_verifies(cli, tmp_path):
    saved = tmp_path / "result.json"
    code, _, stderr = cli("solve", str(EXAMPLE.parent / "small_three_level.yaml"), "--no-heuristics", "-o", str(saved))
    assert code == 0, stderr
    assert json.loads(saved.read_text())["format"] == "mapcert-result/2"
    code, stdout, stderr = cli("verify", str(saved))
    assert code == 0 and "VERIFIED" in stdout, stdout + stderr
