"""A mixed-integer linear model written straight into HiGHS.

The multi-level MILP is built once per keep set and then solved dozens of
times with a few column bounds and one row bound changed: the
stationary-tensor pieces, their LP relaxations, the cutoff of the moment.
pyomo's persistent interface re-adds every row that holds a variable fixed
since the last solve and reports through a logging callback, which on a
small layer took more time than HiGHS' own solves. Here an expression is a
map from column index to coefficient, the rows go to HiGHS once as a sparse
matrix, and a piece changes bounds in place (``docs/tiling-multilevel.md``,
"Exact methods").

Expressions keep the arithmetic a model is written in (``x + 2 * y <= 3``,
``sum(...) == 1``). A sum shares its list of parts with the sum it was made
from and only appends, as pyomo's sums do, so ``sum()`` over many terms
takes linear time while every expression stays immutable.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

INFINITY = math.inf


class Expression:
    """A linear expression over the columns of one :class:`LinearModel`."""

    __slots__ = ()
    __hash__ = object.__hash__

    def linear(self) -> tuple[dict[int, float], float]:
        """(coefficient per column, constant); the dict must not be changed."""
        raise NotImplementedError

    def __add__(self, other):
        return _Sum.join(self, other)

    def __radd__(self, other):
        return _Sum.join(other, self)

    def __sub__(self, other):
        return _Sum.join(self, -1 * other)

    def __rsub__(self, other):
        return _Sum.join(other, _Scaled(-1.0, self))

    def __neg__(self):
        return _Scaled(-1.0, self)

    def __mul__(self, other):
        if not isinstance(other, Real):
            raise TypeError("a linear model multiplies expressions by numbers only")
        return 0 if other == 0 else _Scaled(float(other), self)

    __rmul__ = __mul__

    def __le__(self, other):
        return Row.of(self - other, -INFINITY, 0.0)

    def __ge__(self, other):
        return Row.of(self - other, 0.0, INFINITY)

    def __eq__(self, other):
        return Row.of(self - other, 0.0, 0.0)


class Column(Expression):
    """One column (variable) of a model."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def linear(self):
        return {self.index: 1.0}, 0.0


class _Scaled(Expression):
    __slots__ = ("factor", "inner", "_linear")

    def __init__(self, factor: float, inner: Expression):
        if isinstance(inner, _Scaled):
            factor, inner = factor * inner.factor, inner.inner
        self.factor, self.inner, self._linear = factor, inner, None

    def linear(self):
        if self._linear is None:
            terms, constant = self.inner.linear()
            self._linear = ({i: self.factor * c for i, c in terms.items()}, self.factor * constant)
        return self._linear


class _Sum(Expression):
    """Parts ``parts[:count]`` plus ``constant``. Adding to the newest sum
    made from a list appends to the list; any other addition copies it, so
    no expression a caller holds ever changes."""

    __slots__ = ("parts", "count", "constant", "_linear")

    def __init__(self, parts: list, count: int, constant: float):
        self.parts, self.count, self.constant, self._linear = parts, count, constant, None

    @staticmethod
    def join(left, right) -> Expression:
        if isinstance(left, Real):
            left, right = right, left
        if isinstance(right, Real):
            if isinstance(left, Real):
                return left + right
            if isinstance(left, _Sum):
                return _Sum(left.parts, left.count, left.constant + float(right))
            return _Sum([left], 1, float(right))
        if not isinstance(right, Expression):
            return NotImplemented
        if isinstance(left, _Sum):
            parts = left.parts if left.count == len(left.parts) else left.parts[:left.count]
            parts.append(right)
            return _Sum(parts, left.count + 1, left.constant)
        return _Sum([left, right], 2, 0.0)

    def linear(self):
        if self._linear is None:
            terms: dict[int, float] = {}
            constant = self.constant
            for part in self.parts[:self.count]:
                part_terms, part_constant = part.linear()
                constant += part_constant
                for i, c in part_terms.items():
                    terms[i] = terms.get(i, 0.0) + c
            self._linear = (terms, constant)
        return self._linear


class Linear(Expression):
    """An expression given by its coefficients at once (``sum_i c_i x_i``
    over a long list, without building a sum part by part)."""

    __slots__ = ("_linear",)

    def __init__(self, coefficients: dict[int, float], constant: float = 0.0):
        self._linear = (coefficients, constant)

    def linear(self):
        return self._linear


class Row:
    """``lower <= sum of terms <= upper``, the constant already moved across."""

    __slots__ = ("terms", "lower", "upper")

    def __init__(self, terms: dict[int, float], lower: float, upper: float):
        self.terms, self.lower, self.upper = terms, lower, upper

    @staticmethod
    def of(expression, lower: float, upper: float) -> "Row | bool":
        if isinstance(expression, Real):
            return lower <= expression <= upper
        terms, constant = expression.linear()
        return Row(terms, lower - constant, upper - constant)

    def __bool__(self):
        raise TypeError("a constraint has no truth value: add it to a model")


class LinearModel:
    """Columns with bounds and integrality, rows, and a linear objective,
    handed to HiGHS as one sparse matrix (:meth:`highs`)."""

    def __init__(self):
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integral: list[bool] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.row_terms: list[dict[int, float]] = []
        self.objective: dict[int, float] = {}
        self.objective_offset = 0.0

    @property
    def columns(self) -> int:
        return len(self.lower)

    def column(self, lower: float, upper: float, integral: bool = False) -> Column:
        """A new column; every column is bounded, so a model is never unbounded."""
        if not (math.isfinite(lower) and math.isfinite(upper)):
            raise ValueError("every column of a linear model needs finite bounds")
        self.lower.append(float(lower))
        self.upper.append(float(upper))
        self.integral.append(integral)
        return Column(len(self.lower) - 1)

    def binary(self) -> Column:
        return self.column(0, 1, integral=True)

    def add(self, row: "Row | bool") -> int:
        """Add a row; returns its index. A comparison of numbers alone is
        true (no row needed: -1) or false (an empty row no point meets)."""
        if isinstance(row, bool):
            if row:
                return -1
            row = Row({}, 1.0, 1.0)
        if not isinstance(row, Row):
            raise TypeError(f"not a constraint: {row!r}")
        if math.isnan(row.lower) or math.isnan(row.upper):
            raise ValueError("a row's bound is not a number (an infinite constant on one side?)")
        self.row_terms.append({i: c for i, c in row.terms.items() if c != 0.0})
        self.row_lower.append(row.lower)
        self.row_upper.append(row.upper)
        return len(self.row_terms) - 1

    def minimize(self, objective, factor: float = 1.0) -> None:
        """Make ``factor * objective`` the objective (to be minimized)."""
        if isinstance(objective, Real):
            self.objective, self.objective_offset = {}, factor * float(objective)
        else:
            terms, offset = objective.linear()
            self.objective = {i: factor * c for i, c in terms.items() if c != 0.0}
            self.objective_offset = factor * offset

    def highs(self):
        """A silent ``highspy.Highs`` holding this model. A model sent to
        other processes is built there again from its arrays, without its
        expressions."""
        import highspy

        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        n = self.columns
        cost = np.zeros(n)
        for i, c in self.objective.items():
            cost[i] = c
        offset = self.objective_offset
        h.addVars(n, np.asarray(self.lower), np.asarray(self.upper))
        if n:
            h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
            integral = [i for i, flag in enumerate(self.integral) if flag]
            if integral:
                h.changeColsIntegrality(len(integral), np.asarray(integral, dtype=np.int32),
                                        np.ones(len(integral), dtype=np.uint8))
        if offset:
            h.changeObjectiveOffset(offset)
        if self.row_terms:
            starts = np.zeros(len(self.row_terms), dtype=np.int32)
            indices, values = [], []
            for r, terms in enumerate(self.row_terms):
                starts[r] = len(indices)
                indices.extend(terms.keys())
                values.extend(terms.values())
            status = h.addRows(len(self.row_terms), np.asarray(self.row_lower), np.asarray(self.row_upper), len(indices),
                               starts, np.asarray(indices, dtype=np.int32), np.asarray(values, dtype=np.float64))
            if status == highspy.HighsStatus.kError:
                largest = max((abs(v) for v in values), default=0.0)
                limit = h.getOptionValue("large_matrix_value")
                limit = limit[-1] if isinstance(limit, tuple) else limit  # (status, value) in highspy 1.7+
                why = (f": a coefficient of {largest:.3g} is beyond its limit of {limit:.0e} (a layer this large "
                       "needs method cpsat)" if largest >= limit else "")
                raise ValueError(f"HiGHS refused the rows of the model{why}")
        return h
