"""Functional model of an SRAM PIM macro with complementary storage (DDC).

Each pair of filters occupies one row of 6T cells per weight position: the
B-bit two's-complement word u of filter i is written to Q, and the macro
reads filter j from the complementary nodes Q-bar.  A MAC is computed bit
plane by bit plane, as a bit-serial macro would: the partial sum of plane b
is the dot product of the inputs with the stored bits, weighted 2^b (and
-2^(B-1) for the sign plane).  Reading Q-bar flips every stored bit, which in
two's complement is -u - 1.  The model returns both filters' outputs and
counts rows, cells and plane activations; the outputs must equal the integer
matrix product with the paired weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...formulations.pairing.cost import Pairing, PairingProblem, paired_weights, stored_words


@dataclass
class MacroReport:
    outputs_match: bool
    rows: int
    cells: int
    plane_activations: int

    def to_dict(self) -> dict:
        return {"outputs_match": self.outputs_match, "rows": self.rows, "cells": self.cells,
                "plane_activations": self.plane_activations}


def bit_planes(words: np.ndarray, bits: int) -> np.ndarray:
    """(bits, ...) array of the two's-complement bits of ``words``, LSB first."""
    unsigned = np.asarray(words, dtype=np.int64) & ((1 << bits) - 1)
    return np.stack([(unsigned >> b) & 1 for b in range(bits)]).astype(np.int64)


def plane_weights(bits: int) -> np.ndarray:
    w = 2 ** np.arange(bits, dtype=np.int64)
    w[-1] = -w[-1]
    return w


def macro_outputs(planes: np.ndarray, inputs: np.ndarray, bits: int) -> np.ndarray:
    """Shift-and-add over bit planes: sum_b weight_b * (inputs @ plane_b^T).

    The plane products run in float64 (exact: every partial sum is below
    2^53 for inputs and positions the schema admits)."""
    partial = np.matmul(inputs.astype(np.float64), planes.astype(np.float64).transpose(0, 2, 1))  # (b, n, f)
    return np.rint(np.tensordot(plane_weights(bits).astype(np.float64), partial, axes=(0, 0))).astype(np.int64)


def _stored_rows(problem: PairingProblem, pairing: Pairing) -> np.ndarray:
    """The word each row of cells holds in Q: a pair's least-distortion word,
    or an unpaired filter as it is."""
    w = problem.weights
    rows_q = [stored_words(w[i], w[j]) for i, j in pairing.pairs] + [w[i] for i in pairing.unpaired]
    return np.array(rows_q, dtype=np.int64).reshape(len(rows_q), problem.positions)


def read_back(problem: PairingProblem, pairing: Pairing) -> np.ndarray:
    """Every filter's weights as the macro holds them, decoded from the cells:
    filter i of a pair from the bits of Q, filter j from the flipped bits
    (Q-bar), an unpaired filter from Q.  (filters, positions)."""
    pairing.validate(problem.filters)
    bits = problem.bits
    q = bit_planes(_stored_rows(problem, pairing), bits)
    weights = plane_weights(bits)
    from_q = np.tensordot(weights, q, axes=(0, 0))
    from_q_bar = np.tensordot(weights, 1 - q, axes=(0, 0))
    out = np.zeros_like(problem.weights)
    for r, (i, j) in enumerate(pairing.pairs):
        out[i], out[j] = from_q[r], from_q_bar[r]
    for r, i in enumerate(pairing.unpaired, start=len(pairing.pairs)):
        out[i] = from_q[r]
    return out


def run_macro(problem: PairingProblem, pairing: Pairing, inputs: np.ndarray) -> tuple[np.ndarray, MacroReport]:
    """Outputs (vectors, filters) of the macro for ``inputs`` (vectors, positions)."""
    pairing.validate(problem.filters)
    bits = problem.bits
    stored = _stored_rows(problem, pairing)
    q = bit_planes(stored, bits)           # what the cells hold
    q_bar = 1 - q                          # the complementary nodes
    inputs = np.asarray(inputs, dtype=np.int64)
    from_q = macro_outputs(q, inputs, bits)
    from_q_bar = macro_outputs(q_bar[:, :len(pairing.pairs)], inputs, bits)
    out = np.zeros((inputs.shape[0], problem.filters), dtype=np.int64)
    for r, (i, j) in enumerate(pairing.pairs):
        out[:, i] = from_q[:, r]
        out[:, j] = from_q_bar[:, r]
    for r, i in enumerate(pairing.unpaired, start=len(pairing.pairs)):
        out[:, i] = from_q[:, r]
    reference = inputs @ paired_weights(problem, pairing).T
    report = MacroReport(
        outputs_match=bool(np.array_equal(out, reference)),
        rows=stored.shape[0],
        cells=stored.size * bits,
        plane_activations=bits * stored.shape[0] * inputs.shape[0],
    )
    return out, report
