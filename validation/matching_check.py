"""Independent check of pairing optima with Edmonds' blossom algorithm.

networkx's ``min_weight_matching`` finds a minimum-weight matching of
maximum cardinality, i.e. a minimum-weight perfect matching on an even
number of filters and a matching leaving one filter out on an odd number;
exactly the problem the MILP and CP-SAT models solve, by a different
algorithm and a different code base.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from ..formulations.pairing.cost import Pairing, PairingProblem, distortion_matrix


def blossom_pairing(problem: PairingProblem) -> tuple[Pairing, int]:
    cost = distortion_matrix(problem)
    f = problem.filters
    graph = nx.Graph()
    graph.add_nodes_from(range(f))
    iu, ju = np.triu_indices(f, 1)
    graph.add_weighted_edges_from(zip(iu.tolist(), ju.tolist(), cost[iu, ju].tolist()))
    matching = nx.min_weight_matching(graph)
    pairs = [tuple(sorted((int(a), int(b)))) for a, b in matching]
    used = {i for p in pairs for i in p}
    pairing = Pairing(pairs, [i for i in range(f) if i not in used])
    return pairing, int(sum(cost[i, j] for i, j in pairs))
