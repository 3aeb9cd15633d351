"""A rigorous lower bound on a buffer size's optimal EMA, from the LP
relaxation of the covering.

Every ordered partition into fitting subgraphs is a covering of the layers
by candidates, each layer once, so its EMA is at least the optimum of the
linear relaxation

    min  sum_k c_k x_k   s.t.  sum_{k holds v} x_k = 1 (every layer v),  0 <= x_k <= 1.

The bound is not read off the LP solver's objective, whose value holds only
up to the solver's tolerances. It is recomputed from the solver's row duals
``y`` by weak duality, which holds for any ``y`` whatsoever:

    sum_k c_k x_k = sum_v y_v + sum_k (c_k - sum_{v in k} y_v) x_k
                 >= sum_v y_v + sum_k min(0, c_k - sum_{v in k} y_v)

for every feasible ``x`` (the cover rows make ``sum_k x_k [v in k] = 1``,
and ``0 <= x_k <= 1``). So a wrong or inexact dual only weakens the bound,
never makes it invalid (docs/partition.md, "Pruning the sizes").
"""

from __future__ import annotations

import highspy
import numpy as np

from .graph import PartitionGraph


def covering_lp_bound(pg: PartitionGraph, cands, time_limit: float = 10.0) -> float:
    """A lower bound on the least EMA of any partition of ``pg`` into ``cands``.

    Parameters
    ----------
    pg : PartitionGraph
        The network.
    cands : list of Candidate
        Every fitting candidate subgraph, each with its ``nodes`` and ``cost``
        (``exact.candidates``).
    time_limit : float
        Seconds HiGHS may take on the LP. When it stops early, its current
        duals still give a valid, if weaker, bound.

    Returns
    -------
    float
        The weak-duality bound; ``-inf`` when there are no candidates.
    """
    if not cands:
        return float("-inf")
    rows = {v: i for i, v in enumerate(pg.graph.nodes)}
    costs = np.array([c.cost for c in cands], dtype=float)
    index = [rows[v] for c in cands for v in c.nodes]
    starts = np.cumsum([0] + [len(c.nodes) for c in cands])

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(cands), len(rows)
    lp.col_cost_ = costs
    lp.col_lower_, lp.col_upper_ = np.zeros(len(cands)), np.ones(len(cands))
    lp.row_lower_ = lp.row_upper_ = np.ones(len(rows))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = starts.astype(np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(len(index))
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", max(0.01, float(time_limit)))
    highs.setOptionValue("threads", 1)
    highs.passModel(lp)
    highs.run()
    duals = np.array(highs.getSolution().row_dual, dtype=float)
    if duals.shape != (len(rows),) or not np.all(np.isfinite(duals)):
        duals = np.zeros(len(rows))  # y = 0 still bounds: sum of min(0, c_k) = 0 for EMA costs
    reduced = costs - np.add.reduceat(duals[np.array(index)], starts[:-1])
    return float(duals.sum() + np.minimum(0.0, reduced).sum())
