"""`mapcert solve` and `compare` on graph-partition instances."""

from __future__ import annotations

import json

from helpers import mapcert_json, run_mapcert as run


def write(tmp_path, text: str):
    path = tmp_path / "partition.yaml"
    path.write_text(text)
    return path


def test_solve_proves_and_checks_a_fixed_buffer(tmp_path):
    instance = write(tmp_path, "family: partition\nworkload: resnet50\nbuffer: 512 KiB\n")
    data = mapcert_json("solve", str(instance), "--json")
    metrics, details = data["metrics"], data["details"]
    assert data["status"] == "optimal" and data["objective"] == data["best_bound"] == metrics["ema_bytes"]
    assert data["lower_bound"] == details["compulsory_ema_bytes"] <= metrics["ema_bytes"]
    assert metrics["ema_bytes"] < details["layer_by_layer_ema_bytes"]
    assert metrics["peak_memory_bytes"] <= 512 * 1024
    check = data["certificate"]["functional"]
    assert check["ran"] and check["passed"]
    assert check["counts"]["counted_ema_bytes"] == metrics["ema_bytes"]
    layers = [v for sub in data["solution"]["subgraphs"] for v in sub]
    assert len(layers) == len(set(layers)) == 72
    again = run("solve", str(instance), "--json", "--method", "cpsat")
    assert json.loads(again.stdout)["objective"] == data["objective"]


def test_compare_coexplores_the_buffer_and_scores_every_heuristic(tmp_path):
    instance = write(tmp_path, "family: partition\nworkload: {randwire: {nodes: 12, seed: 3}}\n"
                               "buffer: [128 KiB, 256 KiB, 512 KiB]\nsolver: {method: dp}\n")
    data = mapcert_json("compare", str(instance), "--json")
    assert data["status"] == "optimal"
    rows = {r["method"]: r for r in data["rows"]}
    assert rows["dp"]["objective"] == rows["milp"]["objective"] == rows["cpsat"]["objective"] == data["optimum"]
    for name in ("greedy-merge", "depth-dp", "annealing", "genetic", "fixed-small", "fixed-medium", "fixed-large"):
        assert rows[name]["objective"] >= data["optimum"], name
    assert all(row["functional"] == "passed" for row in data["rows"]), data["rows"]


def test_solve_minimizes_latency(tmp_path):
    instance = write(tmp_path, "family: partition\nworkload: resnet50\nbuffer: 512 KiB\nobjective: latency\n"
                               "accelerator: {macs_per_cycle: 256, dram_bytes_per_cycle: 8}\n")
    data = mapcert_json("solve", str(instance), "--json")
    assert data["status"] == "optimal" and data["objective_name"] == "latency"
    assert data["objective"] == data["metrics"]["latency_cycles"] == data["best_bound"]
    assert data["certificate"]["functional"]["passed"]
    ema = json.loads(run("solve", str(write(tmp_path, "family: partition\nworkload: resnet50\nbuffer: 512 KiB\n"
                                                      "accelerator: {macs_per_cycle: 256, dram_bytes_per_cycle: 8}\n")),
                         "--json").stdout)
    assert ema["metrics"]["latency_cycles"] >= data["metrics"]["latency_cycles"]
    assert ema["metrics"]["ema_bytes"] <= data["metrics"]["ema_bytes"]


def test_compare_with_separate_buffers(tmp_path):
    instance = write(tmp_path, "family: partition\nworkload: {randwire: {nodes: 12, seed: 3}}\n"
                               "buffer: {activations: 96 KiB, weights: 160 KiB}\nsolver: {method: dp}\n")
    data = mapcert_json("compare", str(instance), "--json")
    rows = {r["method"]: r for r in data["rows"]}
    assert rows["dp"]["objective"] == rows["milp"]["objective"] == rows["cpsat"]["objective"] == data["optimum"]
    for name in ("greedy-merge", "depth-dp", "annealing", "genetic"):
        assert rows[name]["objective"] >= data["optimum"] and rows[name]["functional"] == "passed", name
    missing = run("solve", str(write(tmp_path, "family: partition\nworkload: vgg16\nbuffer: {activations: 1 MiB}\n")))
    assert missing.returncode == 2 and "buffer.weights" in missing.stderr


def test_bad_partition_instances_are_explained(tmp_path):
    unknown = run("solve", str(write(tmp_path, "family: partition\nworkload: resnet51\nbuffer: 1 MiB\n")))
    assert unknown.returncode == 2 and "unknown network 'resnet51'" in unknown.stderr
    size = run("solve", str(write(tmp_path, "family: partition\nworkload: vgg16\nbuffer: lots\n")))
    assert size.returncode == 2 and "buffer" in size.stderr and "Traceback" not in size.stderr
    latency = run("solve", str(write(tmp_path, "family: partition\nworkload: vgg16\nbuffer: [1 MiB, 2 MiB]\n"
                                               "objective: latency\n")))
    assert latency.returncode == 2 and "objective" in latency.stderr and "Traceback" not in latency.stderr
    tiny = run("solve", str(write(tmp_path, "family: partition\nworkload: vgg16\nbuffer: 1 KiB\n")))
    assert tiny.returncode == 2 and "no feasible solution" in tiny.stderr and "Traceback" not in tiny.stderr


def test_plot_draws_the_partition(tmp_path):
    instance = write(tmp_path, "family: partition\nworkload: googlenet\nbuffer: 256 KiB\n")
    picture = tmp_path / "partition.png"
    done = run("plot", str(instance), "-o", str(picture))
    assert done.returncode == 0, done.stderr
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run("plot", str(instance), "-o", str(picture))
    assert again.returncode == 2 and "not overwritten" in again.stderr
