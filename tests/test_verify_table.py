"""A network's verification table: a layer that passed every check is one row; a failing layer is listed in full."""

from __future__ import annotations

from rich.console import Console

from mapcert.cli import render
from mapcert.validation.verify import Check


def shown(checks, by_layer: bool) -> str:
    console = Console(record=True, width=160)
    render.checks_table(console, checks, title="verification", by_layer=by_layer)
    return console.export_text()


CHECKS = [Check("family: re-derived", True, "tiling"),
          Check("parts[net.conv1]. objective: re-derived", True, "12"),
          Check("parts[net.conv1]. optimum: re-proved by milp", True, "12"),
          Check("parts[net.fc]. objective: re-derived", True, "7"),
          Check("parts[net.fc]. optimum: re-proved by milp", False, "proved 6, stored 7"),
          Check("objective: re-derived from the layers", True, "19")]


def test_a_layer_that_passed_everything_is_one_row_and_a_failing_one_is_listed():
    text = shown(CHECKS, by_layer=True)
    assert "parts[net.conv1]: every check" in text and "2 checks" in text
    assert "parts[net.conv1]. objective" not in text
    assert "parts[net.fc]. objective: re-derived" in text and "proved 6, stored 7" in text and "FAIL" in text
    assert "parts[net.fc]: every check" not in text
    assert text.index("family") < text.index("net.conv1") < text.index("net.fc") < text.index("from the layers")


def test_every_check_is_listed_on_request():
    text = shown(CHECKS, by_layer=False)
    assert "every check" not in text and text.count("parts[net.") == 4


def test_a_tile_over_its_partition_is_named_with_the_partition():
    """On a level split per tensor, the total footprint can be below the
    level's size while one tensor overflows its part: the violation names
    that tensor and its partition (a total would explain nothing)."""
    from mapcert.hardware.hierarchy import overflow

    tiles = {"inputs": 8 * 1000, "weights": 8 * 500, "outputs": 8 * 4056}
    parts = {"inputs": 8 * 3072, "weights": 8 * 1024, "outputs": 8 * 2048}
    said = overflow("GLB", 8 * 6144, parts, tiles, ("inputs", "weights", "outputs"))
    assert said.startswith("GLB: the outputs tile") and "partition (2.00 KiB)" in said and "inputs" not in said
    shared = overflow("GLB", 8 * 4096, None, tiles, ("inputs", "weights", "outputs"))
    assert "exceed its 4.00 KiB" in shared and "outputs 3.96 KiB" in shared
    assert overflow("GLB", 8 * 6144, None, tiles, ("inputs", "weights", "outputs")) is None


def test_a_result_cut_short_or_edited_out_of_shape_fails_in_a_users_words():
    """A result whose shape is broken (a truncated file, a bound replaced by
    a number) fails verification with the field named and a message that
    names no internal class."""
    import mapcert

    result = mapcert.solve(mapcert.load("examples/vgg16_conv3_2_64KiB.yaml"), functional=False).to_dict()
    cut = {k: v for k, v in result.items() if k not in ("certificate", "method")}
    edited = {**result, "bounds": [5]}
    for data, field in ((cut, "certificate"), (edited, "bounds.0")):
        verification = mapcert.verify(data, time_limit=30, methods=["cpsat"])
        failed = [c for c in verification.checks if not c.passed]
        assert not verification.passed and any(c.name.startswith(field + ":") for c in failed)
        assert all("Entry" not in c.detail and "Input should be" not in c.detail for c in failed)


def test_an_edited_tile_fails_on_the_solution_and_nothing_else_is_blamed():
    """A smaller tile in a saved optimum makes the solution worse: verify
    fails on its objective and status, while the stored best bound and the
    heuristics' gaps, which are right against the re-proved optimum, pass
    (measured against the edited solution they would seem wrong)."""
    import mapcert

    result = mapcert.solve(mapcert.load("examples/vgg16_conv3_2_64KiB.yaml"), functional=False).to_dict()
    result["solution"]["tiles"]["C"] //= 2
    verification = mapcert.verify(result, time_limit=30, methods=["cpsat"])
    failed = [c.name for c in verification.checks if not c.passed]
    assert not verification.passed and any(name.startswith("objective:") for name in failed)
    assert not any(name.startswith(("best_bound", "heuristics")) for name in failed), failed


def test_a_status_understated_as_feasible_passes_and_says_so():
    import mapcert

    result = mapcert.solve(mapcert.load("examples/vgg16_conv3_2_64KiB.yaml"), functional=False).to_dict()
    result["status"] = "feasible"
    verification = mapcert.verify(result, time_limit=30, methods=["cpsat"])
    status = next(c for c in verification.checks if c.name == "status: re-derived")
    assert status.passed and "weaker, not false" in status.detail


def test_a_difference_the_display_rounds_away_is_shown_in_full():
    from mapcert.validation.verify import _field

    check = _field("best_bound", 8966988.7999, 8966989.0, "equals the proved optimum")
    assert not check.passed and "8966988.7999" in check.detail and "8966989.0" in check.detail


def test_an_optimum_claimed_with_its_own_value_as_the_bound_fails_on_the_gap():
    """A worse solution stored as optimal, its objective and best bound set
    to its own value and the gap to 0, agrees with itself; the gap re-derived
    from the re-proved optimum does not."""
    import mapcert
    from mapcert.formulations.registry import family_of

    problem = mapcert.load("examples/vgg16_conv3_2_64KiB.yaml")
    result = mapcert.solve(problem, functional=False).to_dict()
    result["solution"]["tiles"]["C"] //= 2
    family = family_of(problem)
    worse = family.evaluate(problem, family.solution_from_dict(problem, result["solution"])).objective
    assert worse > result["objective"]
    result.update(objective=worse, best_bound=worse, gap=0.0)
    verification = mapcert.verify(result, time_limit=30, methods=["cpsat"])
    gap = next(c for c in verification.checks if c.name.startswith("gap:"))
    assert not gap.passed and not verification.passed


def test_a_networks_summary_names_the_bound_its_heuristics_are_measured_against():
    import mapcert
    from mapcert.instances import load_text

    problem = load_text("family: tiling\nworkload: lenet5\nhardware:\n  levels:\n    - {name: DRAM}\n"
                        "    - {name: GLB, capacity: 2 KiB}\nsolver: {time_limit: 20}\n")
    result = mapcert.solve(problem, functional=False)
    console = Console(record=True, width=200)
    render.render_network(console, result)
    text = console.export_text()
    assert f"best bound {render.number(result.best_bound)}" in text and "gap" in text
    assert "/ rigorous" in text and "rigorous bound" in text  # the ratio column, and the summary line


def test_an_unproved_incumbent_below_a_claimed_optimum_says_so():
    """A re-proof cut short whose incumbent beats the stored optimum fails
    the claim, and its detail says why (it read "nothing it found
    contradicts the claim" beside the failure)."""
    from types import SimpleNamespace

    from mapcert.formulations.family import Attempt, Status
    from mapcert.validation.verify import _proof_check

    claimed = SimpleNamespace(status=Status.OPTIMAL, best_bound=None)
    cut_short = Attempt(Status.FEASIBLE, objective=35_864_576.0)
    check = _proof_check("milp", cut_short, 35_864_576.0, claimed, 40_000_000.0)
    assert not check.passed and "its incumbent 35,864,576 is below the claimed optimum 40,000,000" in check.detail
    agrees = _proof_check("milp", cut_short, 40_000_000.0, claimed, 40_000_000.0)
    assert agrees.passed and "inconclusive (nothing it found contradicts the claim)" in agrees.detail


def test_an_edited_written_form_is_shown_where_it_differs():
    """Two long solutions that differ deep inside: the check names the
    place and both values there, not two texts cut before the difference."""
    from mapcert.validation.verify import _first_difference

    ours = {"levels": [{"name": "L2", "factors": {"P": 5, "Q": 10}}, {"name": "L1", "factors": {"P": 2}}]}
    theirs = {"levels": [{"name": "L2", "factors": {"P": 10, "Q": 10}}, {"name": "L1", "factors": {"P": 1}}]}
    assert _first_difference(ours, theirs, "solution") == ("solution.levels[0].factors.P", 5, 10)
    assert _first_difference({"a": 1}, {"a": 1, "b": 2}, "s") == ("s.b", "(absent)", 2)
    assert _first_difference([1, 2], [1, 2, 3], "s") == ("s", [1, 2], [1, 2, 3])


def test_a_small_gap_is_not_shown_as_none():
    """A gap below the shown precision is not zero: tables say so."""
    from mapcert.cli.render import percent

    assert percent(3e-5) == "<0.1%" and percent(0.0) == "0.0%" and percent(0.123) == "12.3%"
    assert percent(None) == "-" and percent(1e-7, 3) == "<0.001%"


def test_metrics_differences_name_the_entry_and_both_values():
    from mapcert.validation.verify import _differences

    stored = {"energy": 5, "levels": [{"name": "GLB", "reads": {"inputs": 16}}, {"name": "RF", "reads": {"inputs": 4}}]}
    derived = {"energy": 5, "levels": [{"name": "GLB", "reads": {"inputs": 12}}, {"name": "RF", "reads": {"inputs": 4}}],
               "extra": 1}
    assert _differences(stored, derived, "metrics") == [
        "metrics.extra (only in the re-derived)", "metrics.levels[0].reads.inputs (stored 16, re-derived 12)"]
