"""Reading a store: one row per point (network totals), one row per job,
filters by swept field, and CSV / Parquet export.

A point's totals follow the definitions of a network result (``mapcert
solve`` on a network, docs/results.md): the objective, the lower bound and
the best bound are sums over the distinct layers weighted by how often each
repeats; the status is ``optimal`` only when every layer is proved; the gap
is ``(objective - max(best bound, lower bound)) / objective``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..formulations.family import Status
from ..pipeline import network_status
from ..result import gap_of
from .spec import describe_value, same_value
from .store import Store, StoreError

RESULT_COLUMNS = ("sweep", "point", "network", "part", "count", "family", "workload", "hardware", "status",
                  "objective_name", "unit", "objective", "lower_bound", "best_bound", "gap", "layers", "distinct",
                  "proved", "failed", "missing", "wall_time_s", "label")


def axis_column(axis: str) -> str:
    """The column of a swept field: its path, or ``axis.PATH`` when the path
    is also the name of a result column (sweeping ``objective``)."""
    return f"axis.{axis}" if axis in RESULT_COLUMNS or axis in JOB_COLUMNS else axis


JOB_COLUMNS = ("family", "workload", "layer", "hardware", "status", "objective_name", "unit", "objective",
               "best_bound", "lower_bound", "gap", "method", "wall_time_s", "job_time_s", "time_limit", "attempts",
               "reason", "worker", "finished_at", "key")


@dataclass
class PointSummary:
    """A point of a sweep with its totals over its layers."""

    sweep: str
    index: int
    values: dict
    label: str
    family: str
    workload: str
    hardware: str
    status: str
    objective: float | None
    lower_bound: float | None
    best_bound: float | None
    gap: float | None
    objective_name: str
    unit: str
    layers: int
    distinct: int
    proved: int
    failed: int
    missing: int
    wall_time_s: float
    heuristics: dict[str, float | None] = field(default_factory=dict)
    parts: list[dict] = field(default_factory=list)
    comparable: str = ""
    """The point's workload as canonical JSON: points with the same one compare."""

    def to_dict(self) -> dict:
        data = {"sweep": self.sweep, "point": self.index}
        data.update({axis_column(axis): value for axis, value in self.values.items()})
        data.update({k: getattr(self, k) for k in (
            "family", "workload", "hardware", "status", "objective_name", "unit", "objective", "lower_bound",
            "best_bound", "gap", "layers", "distinct", "proved", "failed", "missing", "wall_time_s")})
        for name, value in self.heuristics.items():
            data[f"heuristic:{name}"] = value
        return data


def sweep_name(store: Store, name: str | None) -> str:
    """The sweep to read: ``name``, or the store's only one."""
    names = [row["name"] for row in store.sweeps()]
    if name is not None:
        if name not in names:
            raise StoreError(f"{store.path}: no sweep named {name!r}; it holds {', '.join(names) or 'none'}")
        return name
    if not names:
        raise StoreError(f"{store.path}: holds no sweep yet; run `mapcert sweep` first")
    if len(names) > 1:
        raise StoreError(f"{store.path}: holds {len(names)} sweeps ({', '.join(names)}); choose one with --sweep")
    return names[0]


def axes_of(store: Store, sweep: str) -> list[str]:
    row = store.db.execute("SELECT axes FROM sweeps WHERE name = ?", (sweep,)).fetchone()
    return json.loads(row["axes"]) if row else []


def point_filters(filters: list[str], axes: list[str]) -> list[str]:
    """The filters a point can answer (swept fields and the point's own
    columns); a layer's fields (``layer=``, ``method=``) filter job rows only."""
    own = {"sweep", "point", "family", "workload", "hardware", "status", *axes, *[axis_column(a) for a in axes]}
    return [f for f in filters if f.split("=", 1)[0].strip() in own]


def parse_filters(filters: list[str], columns: list[str], axes: list[str] = ()) -> list[tuple[str, str]]:
    """``["hardware=eyeriss", "status=optimal"]`` -> (column, value) pairs; a
    swept field's path names its column (ValueError naming the known fields
    for an unknown one)."""
    pairs = []
    for item in filters:
        if "=" not in item:
            raise ValueError(f"--where {item!r}: write FIELD=VALUE, e.g. --where hardware=eyeriss")
        key, value = item.split("=", 1)
        key = key.strip()
        if key in axes:
            key = axis_column(key)
        if key not in columns:
            raise ValueError(f"--where {item!r}: unknown field {key!r}; the fields are {', '.join(columns)}")
        pairs.append((key, value.strip()))
    return pairs


def _matches(row: dict, filters: list[tuple[str, str]]) -> bool:
    for key, wanted in filters:
        value = row.get(key)
        if same_value(value, wanted) or describe_value(value) == wanted:
            continue
        if key in ("layer", "part") and isinstance(value, str) and value.endswith("." + wanted):
            continue  # `conv1` names `resnet18.conv1`
        return False
    return True


def unmatched(rows: list[dict], filters: list[tuple[str, str]]) -> str | None:
    """Why no row matches, naming the values the first failing field has."""
    for i in range(len(filters)):
        if not any(_matches(r, filters[:i + 1]) for r in rows):
            key, wanted = filters[i]
            present = sorted({describe_value(r.get(key)) for r in rows if _matches(r, filters[:i])})
            return (f"--where {key}={wanted}: no row has it; {key} is one of "
                    f"{', '.join(present[:12]) + (', ...' if len(present) > 12 else '') or '(no value)'}")
    return None


def job_rows(store: Store, sweep: str, filters: list[str] | None = None) -> list[dict]:
    """One flat row per point and layer, with the point's swept values."""
    values = store.point_values(sweep)
    axes = axes_of(store, sweep)
    rows = []
    for row in store.rows(sweep):
        data = {"sweep": sweep, "point": row["point"]}
        data.update({axis_column(axis): values.get(row["point"], {}).get(axis) for axis in axes})
        data.update({"network": row["network"], "part": row["part"], "count": row["count"]})
        for column in JOB_COLUMNS:
            data[column] = row[column] if column != "key" else row["part_key"]
        if data["status"] is None:
            data["status"] = "pending"
        rows.append(data)
    columns = ["sweep", "point", *[axis_column(a) for a in axes], "network", "part", "count", *JOB_COLUMNS]
    pairs = parse_filters(filters or [], columns, axes)
    kept = [r for r in rows if _matches(r, pairs)]
    if pairs and not kept:
        raise ValueError(unmatched(rows, pairs))
    return kept


def point_summaries(store: Store, sweep: str, filters: list[str] | None = None) -> list[PointSummary]:
    """One summary per point (its network totals), in point order."""
    values = store.point_values(sweep)
    points = {row["point"]: row for row in store.points(sweep)}
    parts: dict[int, list] = {}
    for row in store.rows(sweep):
        parts.setdefault(row["point"], []).append(row)
    results = store.job_results(sorted({r["part_key"] for rows in parts.values() for r in rows}))
    summaries = []
    for index, point in points.items():
        rows = parts.get(index, [])
        summaries.append(_summary(sweep, index, values.get(index, {}), point, rows, results))
    if filters:
        axes = axes_of(store, sweep)
        columns = ["sweep", "point", *[axis_column(a) for a in axes], "family", "workload", "hardware", "status"]
        pairs = parse_filters(filters, columns, axes)
        every = summaries
        summaries = [s for s in summaries if _matches({**s.to_dict()}, pairs)]
        if not summaries:
            raise ValueError(unmatched([x.to_dict() for x in every], pairs))
    return summaries


def _weighted(values: list, counts: list[int]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(sum(v * c for v, c in zip(values, counts)))


def _summary(sweep: str, index: int, values: dict, point, rows: list, results: dict) -> PointSummary:
    counts = [r["count"] for r in rows]
    statuses = [r["status"] for r in rows]
    known = [Status(s) for s in statuses if s in {m.value for m in Status}]
    missing = sum(s is None for s in statuses)
    failed = sum(s in ("failed", "error") for s in statuses)
    if missing:
        status = "pending"
    elif any(s == "failed" for s in statuses):
        status = "failed"
    else:
        status = network_status(known).value if len(rows) > 1 else (statuses[0] if statuses else "pending")
    objective = _weighted([r["objective"] for r in rows], counts)
    lower = _weighted([r["lower_bound"] for r in rows], counts)
    best = _weighted([r["best_bound"] for r in rows], counts)
    gap = gap_of(objective, best, lower) if status in ("optimal", "feasible") else None
    heuristics: dict[str, float | None] = {}
    part_results = [results.get(r["part_key"]) for r in rows]
    names = [h["method"] for h in (part_results[0] or {}).get("heuristics", [])] if part_results else []
    for name in names:
        per = [next((h.get("objective") for h in (res or {}).get("heuristics", []) if h["method"] == name), None)
               for res in part_results]
        heuristics[name] = _weighted(per, counts)
    first = next((r for r in rows if r["objective_name"]), None)
    return PointSummary(
        sweep=sweep, index=index, values=values, label=point["label"], family=point["family"],
        workload=point["workload"], hardware=point["hardware"], status=status, objective=objective,
        lower_bound=lower, best_bound=best, gap=gap,
        objective_name=first["objective_name"] if first else "", unit=(first["unit"] or "") if first else "",
        layers=sum(counts), distinct=len(rows), proved=sum(s == "optimal" for s in statuses), failed=failed,
        missing=missing, wall_time_s=round(sum(r["wall_time_s"] or 0.0 for r in rows), 3), heuristics=heuristics,
        comparable=point["comparable"],
        parts=[{"part": r["part"], "count": r["count"], "status": r["status"] or "pending",
                "objective": r["objective"], "lower_bound": r["lower_bound"], "gap": r["gap"],
                "heuristics": {h["method"]: h.get("objective") for h in (res or {}).get("heuristics", [])}}
               for r, res in zip(rows, part_results)])


def best_points(summaries: list[PointSummary]) -> dict[str, PointSummary]:
    """The best point of each group of comparable points: same workload
    (the instance's whole ``workload`` field) and same objective.  Within a
    group, the least total among points with every layer solved wins (a
    proved point wins a tie, then the first).  A sweep over hardware has one
    group; a sweep that also varies the workload has one per workload."""
    groups: dict[str, list[PointSummary]] = {}
    for s in summaries:
        if s.objective is not None and s.status in ("optimal", "feasible"):
            groups.setdefault(f"{s.comparable}|{s.objective_name}", []).append(s)
    return {key: min(group, key=lambda s: (s.objective, s.status != "optimal", s.index))
            for key, group in groups.items()}


def best_point(summaries: list[PointSummary]) -> PointSummary | None:
    """The one best point when all points are comparable, else None."""
    best = best_points(summaries)
    comparable = {f"{s.comparable}|{s.objective_name}" for s in summaries}
    return next(iter(best.values())) if len(best) == 1 and len(comparable) == 1 else None


def write_csv(rows: list[dict], path: Path) -> None:
    """Rows as CSV (columns from the first row; values as written)."""
    columns = _columns(rows)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _flat(row.get(k)) for k in columns})


def write_parquet(rows: list[dict], path: Path) -> None:
    """Rows as Parquet (pyarrow); mixed-type columns are written as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _columns(rows)
    arrays = {}
    for column in columns:
        values = [_flat(row.get(column)) for row in rows]
        kinds = {type(v) for v in values if v is not None}
        if kinds <= {int} or kinds <= {int, float} or kinds <= {float}:
            arrays[column] = pa.array([None if v is None else (float(v) if float in kinds else v) for v in values])
        else:
            arrays[column] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    pq.write_table(pa.table(arrays), path)


def _columns(rows: list[dict]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    return list(columns)


def _flat(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return str(value).lower()
    return value
