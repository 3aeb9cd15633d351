"""mapcert: provably optimal mappings of neural-network layers onto accelerators.

Every problem family (loop tiling, crossbar allocation, filter pairing,
graph partition) is reached through the same five functions:

>>> import mapcert
>>> problem = mapcert.load("examples/vgg16_conv3_2_64KiB.yaml")
>>> result = mapcert.solve(problem)            # optimum + certificate
>>> result.status.value, result.objective, result.gap
('optimal', 11321344.0, 0.0)
>>> [b.name for b in mapcert.bounds(problem)]
['compulsory', 'hong_kung', 'read_segment', 'capped_segment', 'seed']
>>> mapcert.verify(result.to_dict(), time_limit=30, methods=["cpsat"]).passed
True

``load`` reads an instance file of any family, ``solve`` runs an exact
method and certifies the answer (``mapcert-result/2``, see
:class:`mapcert.result.Result`), ``compare`` scores every method and the
user's own solutions against the certified optimum, ``bounds`` gives the
analytical lower bounds, ``verify`` re-derives a stored result without
trusting it.  Families register in :mod:`mapcert.formulations.registry`.
"""

from __future__ import annotations

from pathlib import Path

from .formulations.family import Status
from .instances import InstanceError, load_text
from .instances import load as _load_file
from .pipeline import Comparison, MethodError
from .pipeline import bounds as _bounds
from .pipeline import compare as _compare
from .pipeline import solve as _solve
from .result import RESULT_FORMAT, Result
from .version import __version__


def load(path: str | Path):
    """Read and validate an instance file of any registered family.

    Parameters
    ----------
    path : str or Path
        The instance YAML (``family:``, ``workload:``, ``hardware:``, ...).

    Returns
    -------
    object
        The family's problem object.

    Raises
    ------
    InstanceError
        Listing every problem as ``file:line: field: what is wrong``.

    Examples
    --------
    >>> import mapcert
    >>> mapcert.load("examples/small_three_level.yaml").hierarchy.name
    'tiny-array'
    """
    return _load_file(path)


def _problem(problem):
    return load(problem) if isinstance(problem, (str, Path)) else problem


def solve(problem, method: str | None = None, time_limit: float | None = None, functional: bool = True,
          heuristics: bool = True, jobs: int | None = 1) -> Result:
    """Solve an instance exactly and certify the answer.

    Parameters
    ----------
    problem : object or str or Path
        A loaded problem of any family, or the path of an instance file.
    method : str, optional
        An exact method of the family (default: the instance's own).
    time_limit : float, optional
        Seconds per exact solve; on time-out the best solution is
        ``feasible`` with its gap.
    functional : bool
        Execute the solution in the family's functional model.
    heuristics : bool
        Score the family's quick heuristics against the answer.
    jobs : int or None
        A network's distinct parts solved at once, each in its own process
        with its share of the cores (``None``: one per core). The optima
        do not depend on it. Above 1, the calling script must guard its
        top level with ``if __name__ == "__main__":``, as every use of
        Python's process pools must (the processes import it again).

    Returns
    -------
    Result
        ``mapcert-result/2``: status, objective, bounds, gap, solution,
        metrics, certificate, heuristics and the self-contained instance.

    Raises
    ------
    MethodError
        An unknown method, or one that does not apply to the instance.

    Examples
    --------
    >>> import mapcert
    >>> r = mapcert.solve("examples/small_three_level.yaml")
    >>> r.status.value, r.certificate.functional.passed
    ('optimal', True)
    """
    return _solve(_problem(problem), method, time_limit, functional=functional, heuristics=heuristics, jobs=jobs)


def compare(problem, methods: list[str] | None = None, time_limit: float | None = None,
            solutions: dict | None = None) -> Comparison:
    """Run every method (or ``methods``) and score each against the optimum.

    Parameters
    ----------
    problem : object or str or Path
        A loaded problem or an instance file (one layer, not a network).
    methods : list of str, optional
        Exact methods and heuristics to run (default: every applicable one).
    time_limit : float, optional
        Seconds per exact method.
    solutions : dict, optional
        The user's own solutions, label -> solution object, scored beside them.

    Returns
    -------
    Comparison
        One row per method with status, objective and gap to the optimum.

    Examples
    --------
    >>> import mapcert
    >>> c = mapcert.compare("examples/vgg16_conv3_2_64KiB.yaml", ["cpsat", "enumerate", "paper-dataflow"])
    >>> c.optimum, [row.gap for row in c.rows][:2]
    (11321344.0, [0.0, 0.0])
    """
    return _compare(_problem(problem), methods, time_limit, solutions)


def bounds(problem) -> list:
    """The analytical lower bounds of an instance, each flagged rigorous or not.

    Examples
    --------
    >>> import mapcert
    >>> [(b.name, b.rigorous) for b in mapcert.bounds("examples/resnet34_crossbar.yaml")][:1]
    [('per-layer copy limit', True)]
    """
    return _bounds(_problem(problem))


def verify(result, time_limit: float = 60.0, methods: list[str] | None = None, jobs: int | None = 1):
    """Re-derive every field of a result from its instance and solution.

    Parameters
    ----------
    result : Result or dict or str or Path
        A result object, its dictionary, or a file saved by ``mapcert solve -o``.
    time_limit : float
        Seconds for each re-proof by an exact method.
    methods : list of str, optional
        The exact methods that re-prove the optimum (default: all applicable).
    jobs : int or None
        Layers of a network verified at once, each in its own process; None
        is one per core. Like ``solve``, the default 1 stays in this process:
        processes re-import the calling script, which then needs an
        ``if __name__ == "__main__":`` guard.

    Returns
    -------
    Verification
        ``passed`` and the list of checks, each naming the field it concerns.

    Examples
    --------
    >>> import mapcert
    >>> mapcert.verify(mapcert.solve("examples/small_three_level.yaml"), methods=["cpsat"]).passed
    True
    """
    import yaml

    from .validation.verify import verify as _verify

    label = "<result>"
    if isinstance(result, Result):
        data = result.to_dict()
    elif isinstance(result, (str, Path)):
        label = str(result)
        data = yaml.safe_load(Path(result).read_text())
    else:
        data = result
    return _verify(data, label, time_limit=time_limit, methods=methods, jobs=jobs)


__all__ = [
    "Comparison", "InstanceError", "MethodError", "RESULT_FORMAT", "Result", "Status",
    "__version__", "bounds", "compare", "load", "load_text", "solve", "verify",
]
