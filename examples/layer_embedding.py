"""A plug-in whose implementation owns its weights, the way framework layers and inference
runtimes do: ``prepare_weights`` builds the layer, ``forward`` calls it, ``table_of`` reads
the table back. Three adapters from one factory:

- ``layer-gather``: the layer's lookup and its own backward pass;
- ``layer-onehot``: one-hot @ table, naming ``layer-gather`` (made by the same factory) as
  its gather twin, so ``onehot_agrees_with_gather`` compares the two;
- ``layer-inference``: a forward-only runtime (``gradient="none"``): every forward check
  runs, the gradient checks are reported as not applicable.

Run them: ``EMBEDDING_HARNESS_ADAPTERS=examples.layer_embedding:make_adapters nox -s conformance``.
"""

import numpy as np

from harness import Declared, EmbeddingAdapter

INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


class EmbeddingLayer:
    """Stands in for a library's layer: it holds its table and computes its own gradient."""

    def __init__(self, table: np.ndarray):
        self.table = np.array(table)  # its own copy, as a framework variable would be

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        return np.take(self.table, ids, axis=0)

    def backward(self, ids: np.ndarray, upstream: np.ndarray) -> np.ndarray:
        grad = np.zeros(self.table.shape, dtype=np.float64)
        np.add.at(grad, ids.reshape(-1), np.asarray(upstream, np.float64).reshape(-1, self.table.shape[1]))
        return grad.astype(self.table.dtype)


class LayerGather(EmbeddingAdapter):
    id, framework, variant = "layer-gather", "examplelib", "gather"
    declared = Declared(weight_dtypes=("float32", "float64"), index_dtypes=INTS,
                        negative_index="wrap", out_of_range="raise")

    def versions(self):
        return {"examplelib": "1.0", "numpy": np.__version__}

    def prepare_weights(self, weights):
        return EmbeddingLayer(weights)  # the layer owns the table from here on

    def prepare_ids(self, ids):
        return np.asarray(ids)

    def prepare_upstream(self, upstream):
        return np.asarray(upstream)  # not a layer: the default would build one

    def forward(self, layer, ids):
        return layer(ids)

    def gradient(self, layer, ids, upstream):
        return layer.backward(ids, upstream)

    def table_of(self, layer):
        return layer.table

    def to_numpy(self, value):
        return np.asarray(value)


class LayerOneHot(LayerGather):
    id, variant = "layer-onehot", "onehot"
    gather_twin = "layer-gather"  # made by the same factory: resolved through it
    declared = Declared(weight_dtypes=("float32", "float64"), index_dtypes=INTS, negative_index="zeros",
                        out_of_range="zeros",
                        deviations={"nan_inf_isolated": "0 * inf = nan: a NaN/Inf row poisons its column",
                                    "negative_zero_preserved": "1 * -0.0 + 0 * w = +0.0"})

    def prepare_ids(self, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":  # == would happily compare floats with row numbers
            raise TypeError(f"ids must be integers, got {ids.dtype}")
        return ids

    def forward(self, layer, ids):
        hot = (np.asarray(ids)[..., None] == np.arange(layer.table.shape[0])).astype(layer.table.dtype)
        return hot @ layer.table

    def gradient(self, layer, ids, upstream):
        hot = (np.asarray(ids)[..., None] == np.arange(layer.table.shape[0])).astype(np.float64)
        flat = hot.reshape(-1, layer.table.shape[0])
        return (flat.T @ np.asarray(upstream, np.float64).reshape(-1, layer.table.shape[1])).astype(layer.table.dtype)


class LayerInference(LayerGather):
    """A forward-only runtime: no gradient, so none is declared."""

    id = "layer-inference"
    declared = Declared(weight_dtypes=("float32", "float64"), index_dtypes=INTS, negative_index="wrap",
                        out_of_range="raise", gradient="none")
    gradient = EmbeddingAdapter.gradient  # not implemented: forward-only


def make_adapters():
    return [LayerGather(), LayerOneHot(), LayerInference()]
