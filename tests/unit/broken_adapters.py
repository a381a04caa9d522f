"""Deliberately broken third-party adapters: the harness must report each as failing."""

import numpy as np

from examples.my_embedding import MyEmbedding


class LosesDuplicates(MyEmbedding):
    """``grad[ids] += up`` is buffered: a duplicated id keeps only one of its updates."""

    id = "broken-loses-duplicates"

    def gradient(self, weights, ids, upstream):
        grad = np.zeros_like(weights)
        grad[ids.reshape(-1)] += upstream.reshape(-1, weights.shape[1])
        return grad


class ClampsButDeclaresRaise(MyEmbedding):
    """Clamps out-of-range ids while declaring that it raises."""

    id = "broken-clamps"

    def forward(self, weights, ids):
        return np.take(weights, ids, axis=0, mode="clip")


class CastsOutputToFloat32(MyEmbedding):
    """Returns float32 rows for float64 tables."""

    id = "broken-casts"

    def forward(self, weights, ids):
        return np.take(weights, ids, axis=0).astype(np.float32)


def make_broken():
    return [LosesDuplicates(), ClampsButDeclaresRaise(), CastsOutputToFloat32()]
