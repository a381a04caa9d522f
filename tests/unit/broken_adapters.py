"""Deliberately broken third-party adapters: the harness must report each one as failing.

Each class models one realistic embedding bug (its docstring says which) on top of
``Faithful``, a correct NumPy embedding that passes every check. ``python -m harness.killrate
broken_adapters`` (``nox -s mutants``) runs the whole suite on each and reports how many the
checks catch: every one must be caught, and the faithful control must pass.
"""

import numpy as np

from harness import Declared, EmbeddingAdapter
from harness.adapter import BagDeclared

INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOATS = ("float16", "bfloat16", "float32", "float64")
OPTIONS = ("padding_idx", "max_norm", "scale_grad_by_freq", "mask_zero")


class Faithful(EmbeddingAdapter):
    """The control: np.take rows, a float64 scatter-add rounded once to the weight dtype; every
    layer option, as torch and Keras define them."""

    id, framework, variant = "faithful", "numpy-plugin", "gather"
    declared = Declared(weight_dtypes=FLOATS, index_dtypes=INTS, negative_index="wrap", out_of_range="raise",
                        options=OPTIONS)

    def versions(self):
        return {"numpy": np.__version__}

    def prepare_weights(self, weights):
        # max_norm rescales the table in place: the layer's own copy, never the caller's array.
        return np.array(weights) if "max_norm" in self.layer_options else np.asarray(weights)

    def prepare_ids(self, ids):
        return np.asarray(ids)

    def _renormalise(self, weights, ids):
        max_norm = self.layer_options.get("max_norm")
        if max_norm is None:
            return
        rows = np.unique(np.asarray(ids).astype(np.int64).reshape(-1) % weights.shape[0])
        norms = np.linalg.norm(weights[rows].astype(np.float64), ord=self.layer_options.get("norm_type", 2.0), axis=1)
        over = rows[norms > max_norm]
        weights[over] = (weights[over] * (max_norm / (norms[norms > max_norm] + 1e-7))[:, None]).astype(weights.dtype)

    def forward(self, weights, ids):
        self._renormalise(weights, ids)
        return np.take(weights, ids, axis=0)

    def _scale(self, ids, vocab):
        """Per-term factors of the gradient: 1, or 1/count of the id (scale_grad_by_freq)."""
        flat = np.asarray(ids).astype(np.int64).reshape(-1) % vocab
        if not self.layer_options.get("scale_grad_by_freq"):
            return flat, np.ones(len(flat))
        return flat, 1.0 / np.bincount(flat, minlength=vocab)[flat]

    def gradient(self, weights, ids, upstream):
        flat, scale = self._scale(ids, weights.shape[0])
        grad = np.zeros(weights.shape, dtype=np.float64)
        np.add.at(grad, flat, np.asarray(upstream, dtype=np.float64).reshape(-1, weights.shape[1]) * scale[:, None])
        padding = self.layer_options.get("padding_idx")
        if padding is not None:
            grad[padding % weights.shape[0]] = 0.0
        return grad.astype(weights.dtype)

    def output_mask(self, weights, ids):
        return np.asarray(ids) != 0 if self.layer_options.get("mask_zero") else None

    def to_numpy(self, value):
        return np.asarray(value)


def _declared(**changes) -> Declared:
    return Declared(**{**Faithful.declared.__dict__, **changes})


# --- gradients ---------------------------------------------------------------------------------
class LosesDuplicates(Faithful):
    """``grad[ids] += up`` is buffered: a duplicated id keeps only one of its updates."""

    id = "broken-loses-duplicates"

    def gradient(self, weights, ids, upstream):
        grad = np.zeros(weights.shape, dtype=np.float64)
        grad[ids.reshape(-1)] += np.asarray(upstream, np.float64).reshape(-1, weights.shape[1])
        return grad.astype(weights.dtype)


class ScalesByFrequency(Faithful):
    """Divides each row's gradient by its id's count (scale_grad_by_freq always on)."""

    id = "broken-scales-by-frequency"

    def gradient(self, weights, ids, upstream):
        grad = super().gradient(weights, ids, upstream).astype(np.float64)
        counts = np.bincount(ids.reshape(-1) % weights.shape[0], minlength=weights.shape[0])
        return (grad / np.maximum(counts, 1)[:, None]).astype(weights.dtype)


class AveragesOverBatch(Faithful):
    """Divides the gradient by the number of ids (a mean loss baked into the layer)."""

    id = "broken-averages-over-batch"

    def gradient(self, weights, ids, upstream):
        return (super().gradient(weights, ids, upstream).astype(np.float64) / max(ids.size, 1)).astype(weights.dtype)


class StaleGradientBuffer(Faithful):
    """Keeps one gradient buffer per table shape and never zeroes it between calls."""

    id = "broken-stale-gradient-buffer"

    def gradient(self, weights, ids, upstream):
        buffers = self.__dict__.setdefault("_buffers", {})
        grad = buffers.setdefault((weights.shape, weights.dtype.str), np.zeros(weights.shape, np.float64))
        np.add.at(grad, ids.reshape(-1), np.asarray(upstream, np.float64).reshape(-1, weights.shape[1]))
        return grad.astype(weights.dtype)


class AccumulatesInFloat16(Faithful):
    """Accumulates every gradient in float16, whatever the table's dtype."""

    id = "broken-accumulates-in-float16"

    def gradient(self, weights, ids, upstream):
        grad = np.zeros(weights.shape, dtype=np.float16)
        np.add.at(grad, ids.reshape(-1), np.asarray(upstream).astype(np.float16).reshape(-1, weights.shape[1]))
        return grad.astype(weights.dtype)


class Float16Upstream(Faithful):
    """Casts the upstream gradient to float16 first: large values overflow to inf."""

    id = "broken-float16-upstream"

    def gradient(self, weights, ids, upstream):
        with np.errstate(over="ignore"):
            return super().gradient(weights, ids, np.asarray(upstream).astype(np.float16))


class GradientDropsLastBlock(Faithful):
    """Scatters ids in blocks of 512 and forgets the last partial block."""

    id = "broken-gradient-drops-last-block"

    def gradient(self, weights, ids, upstream):
        flat = ids.reshape(-1)
        keep = flat.size if flat.size <= 512 else flat.size // 512 * 512
        up = np.asarray(upstream).reshape(-1, weights.shape[1])
        return super().gradient(weights, flat[:keep], up[:keep])


class ClipsNegativeIdsInGradient(Faithful):
    """Wraps negative ids in forward, but clips them to row 0 in the gradient."""

    id = "broken-clips-negative-in-gradient"

    def gradient(self, weights, ids, upstream):
        return super().gradient(weights, np.clip(ids.astype(np.int64), 0, None), upstream)


class NondeterministicGradient(Faithful):
    """Adds duplicates in a random order in float32 (like unordered atomics on a CPU)."""

    id = "broken-nondeterministic-gradient"

    def gradient(self, weights, ids, upstream):
        flat = ids.reshape(-1)
        up = np.asarray(upstream, np.float32).reshape(-1, weights.shape[1])
        order = np.random.default_rng().permutation(flat.size)
        grad = np.zeros(weights.shape, np.float32)
        np.add.at(grad, flat[order], up[order])
        return grad.astype(weights.dtype)


class GradientInFloat64(Faithful):
    """Returns a float64 gradient for every table."""

    id = "broken-gradient-float64"

    def gradient(self, weights, ids, upstream):
        return super().gradient(weights, ids, upstream).astype(np.float64)


class CountsHitsInUint8(Faithful):
    """Sums a row's upstream as mean x count with a uint8 counter (it wraps past 255); it
    even declares float16 saturation, which this is not."""

    id = "broken-counts-hits-in-uint8"
    declared = _declared(deviations={"low_precision_accumulation[float16]": "claims to saturate in float16",
                                     "low_precision_accumulation[bfloat16]": "claims to saturate in bfloat16"})

    def gradient(self, weights, ids, upstream):
        flat = ids.reshape(-1) % weights.shape[0]
        up = np.asarray(upstream, np.float64).reshape(-1, weights.shape[1])
        sums = np.zeros(weights.shape, np.float64)
        np.add.at(sums, flat, up)
        counts = np.bincount(flat, minlength=weights.shape[0])
        mean = sums / np.maximum(counts, 1)[:, None]
        return (mean * (counts.astype(np.uint8).astype(np.float64))[:, None]).astype(weights.dtype)


# --- ids ----------------------------------------------------------------------------------
class ClampsButDeclaresRaise(Faithful):
    """Clamps out-of-range ids while declaring that it raises."""

    id = "broken-clamps"

    def forward(self, weights, ids):
        return np.take(weights, ids, axis=0, mode="clip")


class NarrowsIdsToInt16(Faithful):
    """Stores ids as int16: ids from 32768 on wrap to negative rows."""

    id = "broken-narrows-to-int16"

    def forward(self, weights, ids):
        return np.take(weights, np.asarray(ids).astype(np.int16), axis=0)


class NarrowsIdsToUint16(Faithful):
    """Stores ids as uint16: ids from 65536 on wrap to the first rows."""

    id = "broken-narrows-to-uint16"

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        return np.take(weights, np.where(ids < 0, ids, ids.astype(np.int64) % 65536), axis=0)


class ReadsUint8AsInt8(Faithful):
    """Reinterprets uint8 ids as int8: id 255 becomes -1, the last row."""

    id = "broken-uint8-as-int8"

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        return np.take(weights, ids.view(np.int8) if ids.dtype == np.uint8 else ids, axis=0)


class ReadsUint16AsInt16(Faithful):
    """Reinterprets uint16 ids as int16: ids above 32767 become negative."""

    id = "broken-uint16-as-int16"

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        return np.take(weights, ids.view(np.int16) if ids.dtype == np.uint16 else ids, axis=0)


class OneBasedIds(Faithful):
    """Treats ids as 1-based: every row is the previous one (id 0 reads the last row)."""

    id = "broken-one-based"

    def forward(self, weights, ids):
        return np.take(weights, np.asarray(ids).astype(np.int64) - 1, axis=0)


class AcceptsFloatIds(Faithful):
    """Truncates float ids to integers instead of rejecting them."""

    id = "broken-accepts-float-ids"

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        return np.take(weights, ids.astype(np.int64) if ids.dtype.kind == "f" else ids, axis=0)


class NegativeOneReadsGarbage(Faithful):
    """Rejects id -2 but reads memory out of bounds for id -1; declares that it raises."""

    id = "broken-minus-one-garbage"
    declared = _declared(negative_index="raise")

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        if np.any(ids < -1):
            raise IndexError("negative id")
        out = np.take(weights, np.where(ids == -1, 0, ids), axis=0)
        out[ids == -1] = np.random.default_rng().standard_normal(out[ids == -1].shape).astype(out.dtype)
        return out


class OutOfRangeZerosSilently(Faithful):
    """Returns zero rows for ids past the table while declaring that it raises."""

    id = "broken-out-of-range-zeros"

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        bad = ids.astype(np.int64) >= weights.shape[0]
        out = np.take(weights, np.where(bad, 0, ids), axis=0)
        out[bad] = 0
        return out


class OutOfRangeGarbage(Faithful):
    """Declares zero rows for ids past the table, returns whatever follows the table."""

    id = "broken-out-of-range-garbage"
    declared = _declared(out_of_range="zeros")

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        bad = ids.astype(np.int64) >= weights.shape[0]
        out = np.take(weights, np.where(bad, 0, ids), axis=0)
        out[bad] = np.random.default_rng().standard_normal(out[bad].shape).astype(out.dtype)
        return out


# --- shapes, layouts and sizes ----------------------------------------------------------------
class EmptyBatchCrashes(Faithful):
    """Checks bounds with ids.max(), which fails on an empty batch."""

    id = "broken-empty-batch"

    def forward(self, weights, ids):
        if int(np.asarray(ids).max()) >= weights.shape[0]:
            raise IndexError("id out of range")
        return super().forward(weights, ids)


class ScalarIdKeepsAxis(Faithful):
    """Returns a (1, dim) row for a 0-d id instead of (dim,)."""

    id = "broken-scalar-keeps-axis"

    def forward(self, weights, ids):
        return np.take(weights, np.atleast_1d(ids), axis=0)


class FlattensRank3(Faithful):
    """Reshapes the output to (ids.shape[0], -1, dim): rank-3 ids lose an axis."""

    id = "broken-flattens-rank3"

    def forward(self, weights, ids):
        out = super().forward(weights, ids)
        return out.reshape(ids.shape[0], -1, weights.shape[1]) if np.ndim(ids) >= 3 else out


class IgnoresFortranIds(Faithful):
    """Reads the id buffer as C-ordered: Fortran-ordered ids come out transposed."""

    id = "broken-ignores-fortran-ids"

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        flat = np.frombuffer(ids.tobytes(order="A"), dtype=ids.dtype).reshape(ids.shape)
        return np.take(weights, flat, axis=0)


class IgnoresStrides(Faithful):
    """Reads the first ids.size elements of a strided view's underlying buffer."""

    id = "broken-ignores-strides"

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        if ids.base is not None and not (ids.flags.c_contiguous or ids.flags.f_contiguous):
            ids = np.ascontiguousarray(ids.base).reshape(-1)[: ids.size].reshape(ids.shape)
        return np.take(weights, ids, axis=0)


class IgnoresFortranWeights(Faithful):
    """Reads the table's buffer as C-ordered: a Fortran-ordered table is scrambled."""

    id = "broken-ignores-fortran-weights"

    def forward(self, weights, ids):
        w = np.frombuffer(weights.tobytes(order="A"), dtype=weights.dtype).reshape(weights.shape)
        return np.take(w, ids, axis=0)


class TransposesSquareTables(Faithful):
    """Guesses the layout from the shape: a square table is taken to be stored transposed."""

    id = "broken-transposes-square"

    def forward(self, weights, ids):
        return np.take(weights.T if weights.shape[0] == weights.shape[1] else weights, ids, axis=0)


class DropsSimdTail(Faithful):
    """Copies rows 16 values at a time and forgets the tail of a width that is not a multiple."""

    id = "broken-drops-simd-tail"

    def forward(self, weights, ids):
        out = super().forward(weights, ids)
        dim = weights.shape[1]
        if dim > 16 and dim % 16:
            out[..., dim - dim % 16:] = 0
        return out


class DropsLastBlock(Faithful):
    """Gathers ids in blocks of 256 and leaves the last partial block's rows zero."""

    id = "broken-drops-last-block"

    def forward(self, weights, ids):
        out = super().forward(weights, ids)
        flat = out.reshape(-1, weights.shape[1])
        if flat.shape[0] > 256 and flat.shape[0] % 256:
            flat[flat.shape[0] // 256 * 256:] = 0
        return flat.reshape(out.shape)


# --- values and state -------------------------------------------------------------------------
class CastsOutputToFloat32(Faithful):
    """Returns float32 rows for every table."""

    id = "broken-casts"

    def forward(self, weights, ids):
        return np.take(weights, ids, axis=0).astype(np.float32)


class Float64ThroughFloat32(Faithful):
    """Computes float64 lookups in float32 and casts back: low bits are lost."""

    id = "broken-float64-through-float32"

    def forward(self, weights, ids):
        out = np.take(weights, ids, axis=0)
        return out.astype(np.float32).astype(weights.dtype) if weights.dtype == np.float64 else out


class CachesFirstTable(Faithful):
    """Builds its layer from the first table it sees and keeps using it for that shape."""

    id = "broken-caches-first-table"

    def forward(self, weights, ids):
        tables = self.__dict__.setdefault("_tables", {})
        table = tables.setdefault((weights.shape, weights.dtype.str), np.array(weights))
        return np.take(table, ids, axis=0)


class RenormalisesInPlace(Faithful):
    """Rescales looked-up rows to norm <= 1 in the caller's table (max_norm, silently)."""

    id = "broken-renormalises-in-place"

    def forward(self, weights, ids):
        rows = np.unique(np.asarray(ids).reshape(-1) % weights.shape[0])
        norms = np.linalg.norm(weights[rows].astype(np.float64), axis=1)
        big = rows[norms > 1]
        weights[big] = (weights[big].astype(np.float64) / norms[norms > 1][:, None]).astype(weights.dtype)
        return np.take(weights, ids, axis=0)


class OneHotMatmulUndeclared(Faithful):
    """Computes one_hot(ids) @ W (0 * inf = NaN spreads) without declaring the deviations."""

    id = "broken-onehot-undeclared"

    def forward(self, weights, ids):
        ids = np.asarray(ids).astype(np.int64) % weights.shape[0]
        hot = (ids[..., None] == np.arange(weights.shape[0])).astype(np.float64)
        return (hot @ weights.astype(np.float64)).astype(weights.dtype)


class FlushesSubnormals(Faithful):
    """Flushes subnormal values in the output to zero (a denormals-are-zero CPU mode)."""

    id = "broken-flushes-subnormals"

    def forward(self, weights, ids):
        out = np.take(weights, ids, axis=0)
        tiny = np.finfo(np.float64).tiny if out.dtype == np.float64 else float(
            __import__("ml_dtypes").finfo(out.dtype).smallest_normal)
        out[np.abs(out.astype(np.float64)) < tiny] = 0
        return out


class LosesNegativeZero(Faithful):
    """Adds +0.0 to every row (a fused "bias" of zero): -0.0 becomes +0.0."""

    id = "broken-loses-negative-zero"

    def forward(self, weights, ids):
        return np.take(weights, ids, axis=0) + np.zeros((), dtype=weights.dtype)


class OneHotMissesLastRow(Faithful):
    """A one-hot twin built with ``one_hot(ids, V - 1)``: the last row is never selected."""

    id, variant, gather_twin = "broken-onehot-misses-last-row", "onehot", "broken_adapters:make_control"

    def _hot(self, weights, ids):
        ids = np.asarray(ids).astype(np.int64) % weights.shape[0]
        return (ids[..., None] == np.arange(weights.shape[0] - 1)).astype(np.float64)

    def forward(self, weights, ids):
        hot = self._hot(weights, ids)
        return (hot @ weights[:-1].astype(np.float64)).astype(weights.dtype)

    def gradient(self, weights, ids, upstream):
        hot = self._hot(weights, ids).reshape(-1, weights.shape[0] - 1)
        grad = np.zeros(weights.shape, dtype=np.float64)
        grad[:-1] = hot.T @ np.asarray(upstream, np.float64).reshape(-1, weights.shape[1])
        return grad.astype(weights.dtype)


# --- layer options -----------------------------------------------------------------------------
class PaddingRowGetsGradient(Faithful):
    """padding_idx only zeroes the row at construction: its gradient still accumulates."""

    id = "broken-padding-row-gets-gradient"

    def gradient(self, weights, ids, upstream):
        return Faithful.gradient(self.configured(padding_idx=None), weights, ids, upstream)


class RenormalisesEveryRow(Faithful):
    """max_norm rescales every row over the limit, not only the rows the ids look up."""

    id = "broken-renormalises-every-row"

    def forward(self, weights, ids):
        self._renormalise(weights, np.arange(weights.shape[0]))
        return np.take(weights, ids, axis=0)


class ScalesByBatchSize(Faithful):
    """scale_grad_by_freq divides by the number of ids in the batch, not by each id's count."""

    id = "broken-scales-by-batch-size"

    def _scale(self, ids, vocab):
        flat, scale = Faithful._scale(self, ids, vocab)
        if self.layer_options.get("scale_grad_by_freq"):
            scale = np.full(len(flat), 1.0 / max(len(flat), 1))
        return flat, scale


class FlatMask(Faithful):
    """mask_zero returns the mask of the flattened ids: a 1-D mask for ids of any rank."""

    id = "broken-flat-mask"

    def output_mask(self, weights, ids):
        mask = Faithful.output_mask(self, weights, ids)
        return None if mask is None else mask.reshape(-1)


# --- bags ------------------------------------------------------------------------------------
class FaithfulBag(EmbeddingAdapter):
    """The bags' control: a loop over the bags, each reduced in float64 and rounded once."""

    id, framework, variant = "faithful-bag", "numpy-plugin", "gather"
    declared = Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"), options=("padding_idx",),
                        bags=BagDeclared(modes=("sum", "mean", "max"), per_sample_weights=True,
                                         input_forms=("matrix", "last_offset")))

    def versions(self):
        return {"numpy": np.__version__}

    def prepare_weights(self, weights):
        return np.asarray(weights)

    def _offsets(self, bags):
        """(flat ids, each bag's start) from the form the bags come in."""
        if bags.form == "matrix":
            matrix = bags.as_matrix()
            return matrix.reshape(-1), np.arange(0, matrix.size, matrix.shape[1])
        if bags.form == "last_offset":
            return bags.ids, np.append(bags.offsets, len(bags.ids))[:-1]
        return bags.ids, bags.offsets

    def prepare_ids(self, bags):
        ids, starts = self._offsets(bags)
        weights = bags.per_sample_weights
        return ids.astype(np.int64), starts, bags.mode, None if weights is None else np.asarray(weights, np.float64)

    def _members(self, native, vocab):
        """Per bag: the positions that take part (padding ids left out)."""
        ids, starts, _, _ = native
        ends = np.append(starts[1:], len(ids))[:len(starts)]  # no bags: no ends either
        padding = self.layer_options.get("padding_idx")
        return [[p for p in range(s, e) if padding is None or ids[p] != padding % vocab]
                for s, e in zip(starts, ends, strict=True)]

    def _reduce(self, rows, mode):
        if not len(rows):
            return np.zeros(rows.shape[1])
        return {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[mode]

    def forward(self, weights, native):
        ids, _, mode, psw = native
        table = weights.astype(np.float64)
        out = []
        for members in self._members(native, len(weights)):
            rows = table[ids[members]] * (1.0 if psw is None else psw[members][:, None])
            out.append(self._reduce(rows.reshape(len(members), weights.shape[1]), mode))
        return np.array(out, dtype=np.float64).reshape(len(out), weights.shape[1]).astype(weights.dtype)

    def _bag_gradient(self, weights, ids, members, mode, psw, up):
        grad = np.zeros(weights.shape)
        if mode == "max":
            rows = weights[ids[members]].astype(np.float64)
            for col in range(weights.shape[1]):
                grad[ids[members[int(np.argmax(rows[:, col]))]], col] += up[col]
            return grad
        for p in members:
            factor = (1.0 if psw is None else psw[p]) / (len(members) if mode == "mean" else 1)
            grad[ids[p]] += factor * up
        return grad

    def gradient(self, weights, native, upstream):
        ids, _, mode, psw = native
        grad = np.zeros(weights.shape)
        for b, members in enumerate(self._members(native, len(weights))):
            if members:
                grad += self._bag_gradient(weights, ids, members, mode, psw, np.asarray(upstream[b], np.float64))
        return grad.astype(weights.dtype)

    def to_numpy(self, value):
        return np.asarray(value)


class _BrokenBag(FaithfulBag):
    """Broken bag adapters are bags: the kill rate runs them like the lookup ones."""


class SumDropsLastBag(_BrokenBag):
    """The last bag runs to offsets[-1] instead of the end of the ids: it is always empty."""

    id = "broken-bag-drops-last-bag"

    def _members(self, native, vocab):
        members = FaithfulBag._members(self, native, vocab)
        return members[:-1] + [[]] if members else members


class MeanOverLongestBag(_BrokenBag):
    """Mean divides by the longest bag's length (a padded batch's mean), not each bag's own."""

    id = "broken-bag-mean-over-longest"

    def forward(self, weights, native):
        out = FaithfulBag.forward(self, weights, native)
        if native[2] != "mean":
            return out
        lengths = np.array([len(m) for m in self._members(native, len(weights))])
        return (out * (lengths / max(lengths.max(initial=1), 1))[:, None]).astype(out.dtype)


class MaxGradientToEveryId(_BrokenBag):
    """Max bags send the gradient to every id of the bag, as a sum would."""

    id = "broken-bag-max-gradient-to-every-id"

    def _bag_gradient(self, weights, ids, members, mode, psw, up):
        return FaithfulBag._bag_gradient(self, weights, ids, members, "sum" if mode == "max" else mode, psw, up)


class GradientIgnoresSampleWeights(_BrokenBag):
    """Per-sample weights scale the forward, but the backward forgets them."""

    id = "broken-bag-gradient-ignores-weights"

    def _bag_gradient(self, weights, ids, members, mode, psw, up):
        return FaithfulBag._bag_gradient(self, weights, ids, members, mode, None, up)


class EmptyMaxIsMinusInf(_BrokenBag):
    """An empty max bag returns the reduction's identity, -inf, while the declaration says zeros."""

    id = "broken-bag-empty-max-minus-inf"

    def _reduce(self, rows, mode):
        if not len(rows) and mode == "max":
            return np.full(rows.shape[1], -np.inf)
        return FaithfulBag._reduce(self, rows, mode)


class LastOffsetIsABag(_BrokenBag):
    """With include_last_offset the appended end offset is read as the start of one more bag."""

    id = "broken-bag-last-offset-is-a-bag"

    def _offsets(self, bags):
        if bags.form == "last_offset":
            return bags.ids, np.append(bags.offsets, len(bags.ids))
        return FaithfulBag._offsets(self, bags)


class PaddingCountedInMean(_BrokenBag):
    """Padding ids are left out of a bag's sum but still counted in its mean's divisor."""

    id = "broken-bag-padding-counted-in-mean"

    def forward(self, weights, native):
        out = FaithfulBag.forward(self, weights, native)
        if native[2] != "mean" or self.layer_options.get("padding_idx") is None:
            return out
        kept = np.array([len(m) for m in self._members(native, len(weights))])
        total = np.diff(np.append(native[1], len(native[0])))
        return (out * (kept / np.maximum(total, 1))[:, None]).astype(out.dtype)


class MultiHotMissesLastRow(_BrokenBag):
    """A multi-hot twin whose M has V - 1 columns: ids of the last row contribute nothing."""

    id, variant, gather_twin = "broken-bag-multihot-misses-last-row", "onehot", "broken_adapters:make_bag_control"
    declared = Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"),
                        bags=BagDeclared(modes=("sum", "mean"), per_sample_weights=True))

    def _members(self, native, vocab):
        members = FaithfulBag._members(self, native, vocab)
        return [[p for p in m if native[0][p] != vocab - 1] for m in members]


def make_broken() -> list[EmbeddingAdapter]:
    """Every broken adapter in this module (one instance each)."""
    return [cls() for cls in BROKEN]


def make_control() -> list[EmbeddingAdapter]:
    """The faithful controls: every check of their family must pass on them."""
    return [Faithful(), FaithfulBag()]


def make_bag_control() -> EmbeddingAdapter:
    return FaithfulBag()


def make_sample() -> list[EmbeddingAdapter]:
    """Three classics, for end-to-end tests that cannot afford the whole set."""
    return [LosesDuplicates(), ClampsButDeclaresRaise(), CastsOutputToFloat32()]


BROKEN = [cls for cls in list(globals().values())
          if isinstance(cls, type) and (issubclass(cls, Faithful) and cls is not Faithful
                                        or issubclass(cls, _BrokenBag) and cls is not _BrokenBag)]
