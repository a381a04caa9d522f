"""Benchmark rows cut into slices for the adapters x vocabulary tables: BENCH.md's, the README's and
the report's. One slice per value of every key column (harness/schema.py) but the adapter, its
index dtype and the vocabulary, so rows that differ in any dimension never share a table cell;
a dimension added to the key gets tables of its own. The grouping is pandas'."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from harness.bench.sweep import sized_rows
from harness.errors import HarnessError
from harness.schema import BENCH_KEY

# Within a slice: what varies across a table (vocabulary) and down it (adapter, index dtype).
TABLE_AXES = ("adapter", "index_dtype", "vocab")
SLICE_COLUMNS = tuple(c for c in BENCH_KEY if c not in TABLE_AXES)
# The slice columns every table title names; any other (a newer dimension) is named when set.
TITLED = ("device", "pass", "dtype", "distribution", "dim", "n_ids", "pooling")
DEVICE_ORDER = ("cpu", "cuda")
PASS_ORDER = ("forward", "forward_backward")


def require_pandas(what: str):
    """pandas, or one line saying that ``what`` needs it and how to install it."""
    try:
        import pandas
    except ImportError:
        raise HarnessError(f"{what} need(s) pandas (a dependency of the harness): pip install 'pandas>=2'") from None
    return pandas


@dataclass
class Slice:
    """The rows of one slice, indexed by the row label and vocabulary of its table."""

    key: dict  # slice column -> its value (None where the rows have none)
    rows: list[dict]
    labels: list[str] = field(init=False)  # one per adapter, or per adapter and index dtype (see label)
    vocabs: list = field(init=False)
    _cells: dict = field(init=False, repr=False)
    _several: set = field(init=False, repr=False)  # adapters measured with several index dtypes

    def __post_init__(self):
        # An adapter gets a row per index dtype only where it was measured with several; a row
        # without one (an adapter skipped before choosing) does not count.
        dtypes: dict[str, set] = {}
        for r in self.rows:
            dtypes.setdefault(r["adapter"], set()).add(r.get("index_dtype"))
        self._several = {a for a, found in dtypes.items() if len(found - {None}) > 1}
        ordered = sorted(self.rows, key=lambda r: (str(r.get("adapter")), str(r.get("index_dtype") or "")))
        self.labels = list(dict.fromkeys(self.label(r) for r in ordered))
        self.vocabs = _ordered_values(r.get("vocab") for r in self.rows)
        self._cells = {}
        for r in self.rows:
            self._cells.setdefault((self.label(r), r.get("vocab")), r)

    def label(self, row: dict) -> str:
        if row["adapter"] in self._several and row.get("index_dtype"):
            return f"{row['adapter']} [{row['index_dtype']}]"
        return str(row["adapter"])

    def cell(self, row_label: str, vocab) -> dict | None:
        return self._cells.get((row_label, vocab))

    def frame(self, cell_text, missing: str = ""):
        """The slice as a pandas DataFrame, one row per label and one column per vocabulary:
        ``cell_text(row)`` where a row was measured, ``missing`` elsewhere."""
        pd = require_pandas("the benchmark tables")
        return pd.DataFrame([[cell_text(r) if (r := self.cell(label, v)) is not None else missing
                              for v in self.vocabs] for label in self.labels],
                            index=self.labels, columns=self.vocabs, dtype=object)

    def extra_dimensions(self) -> str:
        """The slice's values in columns no title names (a dimension added after the titles)."""
        return ", ".join(f"{c} {v}" for c, v in self.key.items() if c not in TITLED and v is not None)


def _ordered_values(values, preferred=()) -> list:
    present = list(dict.fromkeys(values))
    head = [v for v in preferred if v in present]
    # Numbers in numeric order, then strings, then None (a size missing from a skipped row).
    rest = sorted((v for v in present if v not in head),
                  key=lambda v: (v is None, isinstance(v, str), v if isinstance(v, (int, float)) else 0, str(v)))
    return head + rest


def slices(rows: list[dict]) -> list[Slice]:
    """The slices of the plain lookups of some size (no launch floor, no bags), in table order:
    device, pass, then every other slice column in value order."""
    pd = require_pandas("the benchmark tables")
    chosen = sized_rows(rows)
    if not chosen:
        return []
    frame = pd.DataFrame({"i": range(len(chosen)),
                          **{c: [r.get(c) for r in chosen] for c in SLICE_COLUMNS}}).astype(object)
    groups = []
    for values, group in frame.groupby(list(SLICE_COLUMNS), dropna=False, sort=False):
        key = {c: (None if pd.isna(v) else v) for c, v in zip(SLICE_COLUMNS, values, strict=True)}
        groups.append(Slice(key, [chosen[i] for i in group["i"]]))
    order = {c: _ordered_values((g.key[c] for g in groups),
                                DEVICE_ORDER if c == "device" else PASS_ORDER if c == "pass" else ())
             for c in SLICE_COLUMNS}
    head = [c for c in ("device", "pass") if c in SLICE_COLUMNS]
    columns = head + [c for c in SLICE_COLUMNS if c not in head]
    return sorted(groups, key=lambda g: [order[c].index(g.key[c]) for c in columns])


def prefer(values: list, wanted):
    """``wanted`` when present, else the most common value."""
    return wanted if wanted in values else Counter(values).most_common(1)[0][0]


def headline(groups: list[Slice], dtype: str = "float32", distribution: str = "uniform") -> list[Slice]:
    """Per device and pass, the slices of the headline dtype and id distribution (where measured,
    else the most common), and per width the batch size with the most measured rows."""
    out = []
    for device, pass_ in dict.fromkeys((g.key.get("device"), g.key.get("pass")) for g in groups):
        mine = [g for g in groups if (g.key.get("device"), g.key.get("pass")) == (device, pass_)]
        want_dtype = prefer([g.key.get("dtype") for g in mine for _ in g.rows], dtype)
        want_dist = prefer([g.key.get("distribution") for g in mine for _ in g.rows], distribution)
        mine = [g for g in mine if g.key.get("dtype") == want_dtype and g.key.get("distribution") == want_dist]
        for dim in _ordered_values(g.key.get("dim") for g in mine):
            at_dim = [g for g in mine if g.key.get("dim") == dim]
            measured = Counter()
            for g in at_dim:
                measured[g.key.get("n_ids")] += sum(r.get("status") == "ok" for r in g.rows) or 0
            counts = measured if any(measured.values()) else Counter(
                {g.key.get("n_ids"): len(g.rows) for g in at_dim})
            top = max(counts.values())
            n_ids = max((n for n, c in counts.items() if c == top), key=lambda n: (n is not None, n or 0))
            out += [g for g in at_dim if g.key.get("n_ids") == n_ids]
    return out
