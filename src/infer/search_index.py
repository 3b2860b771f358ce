"""Exact cosine search over L2-normalised embeddings: the top k entries by inner product for each query.

Small galleries are searched with NumPy (one matrix product and a partial sort); from ``FAISS_MIN_SIZE`` entries
on, faiss' exact inner-product index (``IndexFlatIP``) answers: below that size both are fast and NumPy needs no
copy of the gallery; above it a single query (the usual search) was faster with faiss (``benchmarks/bench_search.py``;
the figures are in docs/performance.md, "Search index"). Both return the same neighbours up to ties. faiss is
imported when a faiss index is built: a run that searches no large gallery (a 1:1 call) does not load it.
"""

import numpy as np

FAISS_MIN_SIZE = 10000
BACKENDS = ("auto", "numpy", "faiss")


class NumpyIndex:
    """Exact search by ``queries @ vectors.T`` and ``argpartition``."""

    name = "numpy"

    def __init__(self, vectors):
        self.vectors = np.ascontiguousarray(vectors, np.float32)

    def __len__(self):
        return len(self.vectors)

    def search(self, queries, k):
        """(scores, ids), each len(queries) x k, best first."""
        scores = np.asarray(queries, np.float32) @ self.vectors.T
        k = min(k, scores.shape[1])
        top = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < scores.shape[1]
            else np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        )
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        return np.take_along_axis(top_scores, order, axis=1), np.take_along_axis(top, order, axis=1)


class FaissIndex:
    """Exact search with faiss ``IndexFlatIP``, on ``threads`` OpenMP threads (faiss' setting is per process). One
    thread by default: on cores shared with other jobs, more threads made a single query far slower
    (docs/performance.md, "Search index")."""

    name = "faiss"

    def __init__(self, vectors, threads=1):
        import faiss

        faiss.omp_set_num_threads(threads)
        vectors = np.ascontiguousarray(vectors, np.float32)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def __len__(self):
        return self.index.ntotal

    def search(self, queries, k):
        """(scores, ids), each len(queries) x k, best first."""
        scores, ids = self.index.search(np.ascontiguousarray(queries, np.float32), min(k, self.index.ntotal))
        return scores, ids.astype(np.int64)


def build_index(vectors, backend="auto"):
    """An index over ``vectors`` (N x D): ``backend`` numpy or faiss, or auto (faiss from FAISS_MIN_SIZE rows)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown search backend '{backend}'; choose one of {BACKENDS}")
    if backend == "auto":
        backend = "faiss" if len(vectors) >= FAISS_MIN_SIZE else "numpy"
    return FaissIndex(vectors) if backend == "faiss" else NumpyIndex(vectors)
