"""Closed-form traffic of one stationary class, shared by both exact models.

For a stationary class k and tile choices with trips n_d and swept input
extents A_P, A_Q (docs/tiling-space-reductions.md derives these):

    inputs   = b_I * N*G*C * A_P * A_Q * (1 if k == inputs  else n_M)
    weights  = b_W * |W|               * (1 if k == weights else n_N*n_P*n_Q)
    outputs  = b_O * |O|
    psums    = 2 * b_psum * |O| * (n_C - 1)   (0 if k == outputs)

All coefficients are integers; dividing by their gcd gives an integer
objective in ``unit`` bits, which lets both solvers prove optimality exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

from .problem import ConvLayer


@dataclass(frozen=True)
class ClassTerms:
    """Integer objective coefficients in units of ``unit`` bits."""

    unit: int
    inputs: int    # times A_P * A_Q * (n_M unless inputs-stationary)
    weights: int   # times n_N * n_P * n_Q unless weights-stationary
    outputs: int   # constant
    psums: int     # times (n_C - 1) unless outputs-stationary


def class_terms(layer: ConvLayer) -> ClassTerms:
    prec = layer.precision
    inputs = prec.inputs * layer.extent("N") * layer.extent("G") * layer.extent("C")
    weights = prec.weights * layer.weight_elements
    outputs = prec.outputs * layer.output_elements
    psums = 2 * prec.psums * layer.output_elements
    unit = gcd(gcd(inputs, weights), gcd(outputs, psums))
    return ClassTerms(unit, inputs // unit, weights // unit, outputs // unit, psums // unit)
