"""1:N search: NumPy exact search vs faiss IndexFlatIP (src/infer/search_index.py) by gallery size.

    python benchmarks/bench_search.py [--sizes 100 1000 ...] [--dims 128 512] [--batches 1 16] [--top_k 5]

Random L2-normalised float32 galleries; for each size, embedding size and query batch: the median ms per query of
each backend's ``search`` (top_k neighbours; faiss with 1 and 2 OpenMP threads) and the time to build the faiss
index. Both indexes are the ones
``Predictor.search`` uses, so the crossover printed at the end is what ``FAISS_MIN_SIZE`` should be.
"""

import argparse
import os
import sys

import faiss
import numpy as np

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))

from benchmarks import common
from src.infer.search_index import FaissIndex, NumpyIndex

COLUMNS = [
    ("dim", "dim"),
    ("batch", "queries/batch"),
    ("size", "gallery size"),
    ("numpy_ms", "numpy ms/query"),
    ("faiss1_ms", "faiss ms/query, 1 thread"),
    ("faiss2_ms", "faiss ms/query, 2 threads"),
    ("faiss_build_ms", "faiss build ms"),
    ("faster", "faster"),
    ("load", "load 1/5/15"),
]


def unit_rows(rng, count, dim):
    x = rng.standard_normal((count, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def median_ms(step, min_seconds):
    """Median ms of ``step()`` over enough runs to take about ``min_seconds`` (at least 5), after one warm-up."""
    once = common.time_steps(step, 1, 1)[0]
    steps = max(5, int(min_seconds / max(once, 1e-6)))
    durations = sorted(common.time_steps(step, steps, 0))
    return 1000.0 * durations[len(durations) // 2]


def measure(args):
    rng = np.random.default_rng(0)
    rows = []
    for dim in args.dims:
        for size in args.sizes:
            vectors = unit_rows(rng, size, dim)
            numpy_index = NumpyIndex(vectors)
            build_ms = median_ms(lambda v=vectors: FaissIndex(v), args.min_seconds)
            faiss_index = FaissIndex(vectors)
            for batch in args.batches:
                queries = unit_rows(rng, batch, dim)
                ms = {"numpy": median_ms(lambda i=numpy_index, q=queries: i.search(q, args.top_k), args.min_seconds)}
                for threads in args.faiss_threads:
                    faiss.omp_set_num_threads(threads)
                    ms[f"faiss{threads}"] = median_ms(
                        lambda i=faiss_index, q=queries: i.search(q, args.top_k), args.min_seconds
                    )
                ms = {name: value / batch for name, value in ms.items()}
                rows.append(
                    dict(
                        dim=dim,
                        batch=batch,
                        size=size,
                        faiss_build_ms=build_ms,
                        faster=min(ms, key=ms.get),
                        load=common.load_average(),
                        **{f"{name}_ms": value for name, value in ms.items()},
                    )
                )
                print(common.format_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
    return rows


def crossover(rows):
    """{(dim, batch): the smallest size from which faiss is faster at every larger size measured}."""
    result = {}
    for key in sorted({(r["dim"], r["batch"]) for r in rows}):
        series = sorted((r for r in rows if (r["dim"], r["batch"]) == key), key=lambda r: r["size"])
        first = None
        for row in series:
            first = (first or row["size"]) if row["faster"].startswith("faiss") else None
        result[key] = first
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000, 10000, 30000, 100000, 300000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--faiss_threads",
        type=int,
        nargs="+",
        default=[1, 2],
        choices=[1, 2],
        help="OpenMP thread counts to time faiss with",
    )
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--min_seconds", type=float, default=0.3, help="time spent on each measurement")
    parser.add_argument("--output", default=os.path.join(common.RESULTS_DIR, "bench_search.json"))
    args = parser.parse_args(argv)
    print(f"load average at start {common.load_average()}")
    rows = measure(args)
    common.finish("search", args, rows, COLUMNS, lambda row: f"{row['dim']} {row['size']}")
    for (dim, batch), size in crossover(rows).items():
        print(
            f"dim {dim}, {batch} queries per call: faiss faster from {size if size else 'no measured'} gallery entries"
        )
    return rows


if __name__ == "__main__":
    main()
