"""Every malformed or impossible instance gets exit status 2 and exactly one
line ``file:line: field: what is wrong`` naming the problem, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CORPUS = sorted((Path(__file__).parent / "bad_instances").glob("*.yaml"))
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<field>[^:]+): (?P<message>.+)$")


def expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: ...'"
    return first.removeprefix("# expect: ").strip()


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_instance_is_rejected_with_one_line(path, cli):
    code, stdout, stderr = cli("solve", str(path), "--no-functional")
    assert code == 2, (stdout, stderr)
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr + stdout
    match = LINE.match(lines[0])
    assert match, lines[0]
    assert match["file"] == str(path)
    assert int(match["line"]) >= 1
    assert expectation(path) in lines[0], lines[0]


def test_errors_point_at_the_offending_line(cli):
    path = next(p for p in CORPUS if p.stem == "06_unknown_dim")
    _, _, stderr = cli("solve", str(path))
    assert LINE.match(stderr.strip())["line"] == "4"


def test_missing_file(cli, tmp_path):
    code, _, stderr = cli("solve", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in stderr and len(stderr.strip().splitlines()) == 1


def test_bound_rejects_bad_input_too(cli):
    path = next(p for p in CORPUS if p.stem == "17_bad_capacity")
    code, _, stderr = cli("bound", str(path))
    assert code == 2 and "capacity" in stderr


def test_verify_says_why_no_method_could_reprove_an_infeasibility(tmp_path, cli):
    """An infeasible result checked only by a method that refuses the
    instance is refused at once, naming the refusal, not "in time"."""
    saved = tmp_path / "result.yaml"
    code, _, _ = cli("solve", str(Path(__file__).parent / "bad_instances" / "32_hierarchy_nothing_fits.yaml"),
                     "--no-functional", "-o", str(saved))
    assert code == 2 and saved.exists()
    code, _, stderr = cli("verify", str(saved), "--methods", "enumerate")
    assert code == 2  # nothing left to re-prove with: said at once, with the reason, not as a failed check
    assert "enumerate does not apply:" in " ".join(stderr.split())
    code, stdout, _ = cli("verify", str(saved), "--methods", "cpsat")
    assert code == 0, stdout


def test_line_100_is_a_number_not_an_emoji(cli, tmp_path):
    """Rich would print ``file.yaml:100:`` as an emoji shortcode."""
    path = tmp_path / "long.yaml"
    path.write_text("family: tiling\n" + "# padding\n" * 98 + "workload: {dims: {N: 0}}\n")
    code, _, stderr = cli("solve", str(path))
    assert code == 2
    assert "long.yaml:100:" in stderr and "\N{HUNDRED POINTS SYMBOL}" not in stderr
