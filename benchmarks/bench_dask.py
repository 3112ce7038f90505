"""Softmax regression on a Dask cluster: a fit on data larger than the workers' memory.

Run from the repository root (needs ``pip install .[dask] scikit-learn scipy``)::

    python -m benchmarks.bench_dask            # several minutes on 2 busy cores
    python -m benchmarks.bench_dask --quick    # a smaller run

A LocalCluster of 2 worker processes (1 thread each, ``--memory-limit`` each) fits
``SoftmaxRegression(solver="lbfgs")`` on a float32 dataset generated chunk by chunk
(each chunk from its own seed, so any chunk can be made again anywhere) whose total
size is ``--oversize`` times the summed memory limits.  The chunks are never
persisted: every L-BFGS evaluation generates each chunk where it runs and reduces it
to its loss and gradient.  Printed and written to ``benchmarks/results/dask-*.json``:

* the large fit, run until its largest gradient entry is below ``--tol``: time
  per L-BFGS iteration, each worker's peak memory (the process's maximum
  resident set) against its limit, and its final loss against the in-memory fit
  of the same data to the same tolerance (made in this process, where it fits);
* on data that fits (persisted in the workers, no memory limit): time per
  iteration of the Dask fit against the in-memory fit of the same data;
* the final loss against scikit-learn's ``LogisticRegression`` on a subsample.
"""
import argparse
import json
import logging
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

L2 = 1e-4


def make_chunk(seed, n, d, c):
    """Rows ``(X, y)`` of chunk ``seed``: uniform features, labels from a fixed linear model."""
    W = np.random.default_rng(12345).standard_normal((c, d)).astype(np.float32)
    rng = np.random.default_rng([seed, 1])
    X = rng.random((n, d), dtype=np.float32) * 2 - 1
    y = (X @ W.T + rng.gumbel(size=(n, c)).astype(np.float32)).argmax(axis=1)
    return X, y


def dask_data(n_chunks, rows, d, c):
    """The dataset as lazy Dask arrays: each chunk generated from its own seed where it is used."""
    import dask.array as da
    seeds = da.arange(n_chunks, chunks=1)
    X = seeds.map_blocks(lambda s: make_chunk(int(s[0]), rows, d, c)[0], new_axis=1,
                         chunks=((rows,) * n_chunks, (d,)), dtype=np.float32)
    y = seeds.map_blocks(lambda s: make_chunk(int(s[0]), rows, d, c)[1], chunks=((rows,) * n_chunks,),
                         dtype=np.int64)
    return X, y


def memory_data(n_chunks, rows, d, c):
    parts = [make_chunk(s, rows, d, c) for s in range(n_chunks)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def objective(clf, X, y):
    from csoftmax import softmax_regression_loss_grad
    return softmax_regression_loss_grad(clf.coef_.astype(np.float64), X, y, clf.intercept_.astype(np.float64),
                                        l2=L2)[0]


def timed_fit(X, y, **kw):
    from csoftmax import SoftmaxRegression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        clf = SoftmaxRegression(solver="lbfgs", l2=L2, **kw).fit(X, y)
        return clf, time.perf_counter() - t


def worker_peaks(client):
    """Each worker process's peak resident memory since it started, in bytes."""
    return client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def large(args, report, cluster, n_chunks, rows, d, c, limit, chunk_bytes):
    """The fit on data larger than the cluster's memory, against the in-memory fit."""
    import dask
    import distributed
    with cluster() as lc, distributed.Client(lc) as client, dask.config.set(scheduler=client):
        X, y = dask_data(n_chunks, rows, d, c)
        y = y.persist()  # the labels are small (8 bytes a row); X is made anew at each evaluation
        size = X.nbytes
        print(f"\nlarge fit: X {X.shape} float32, {size / 2**30:.2f} GiB = {size / (2 * limit):.2f}x the summed "
              f"memory limits, {n_chunks} chunks of {chunk_bytes / 2**20:.0f} MiB, never persisted")
        big, t_big = timed_fit(X, y, tol=args.tol, max_iter=10_000)
        peaks = worker_peaks(client)
    per_it_big = t_big / big.n_iter_
    print(f"  Dask fit: {big.n_iter_} iterations in {t_big:.1f} s = {per_it_big * 1e3:.0f} ms/iteration")
    for addr, peak in sorted(peaks.items()):
        print(f"  worker {addr}: peak {peak / 2**20:.0f} MiB of {args.memory_limit} MB limit "
              f"({'under' if peak < limit else 'OVER'})")
    Xm, ym = memory_data(n_chunks, rows, d, c)
    mem, t_mem = timed_fit(Xm, ym, tol=args.tol, max_iter=10_000)
    f_big, f_mem = objective(big, Xm, ym), objective(mem, Xm, ym)
    rel = abs(f_big - f_mem) / f_mem
    print(f"  in-memory fit on the same data (this process): {mem.n_iter_} iterations in {t_mem:.1f} s "
          f"= {t_mem / mem.n_iter_ * 1e3:.0f} ms/iteration")
    print(f"  final loss: Dask {f_big:.10f}, in memory {f_mem:.10f}, relative difference {rel:.2e}")
    report["large"] = {"rows": int(X.shape[0]), "bytes": int(size), "oversize": size / (2 * limit),
                       "n_iter": big.n_iter_, "seconds": t_big, "seconds_per_iter": per_it_big,
                       "worker_peak_bytes": {k: int(v) for k, v in peaks.items()},
                       "in_memory_n_iter": mem.n_iter_, "in_memory_seconds": t_mem,
                       "in_memory_seconds_per_iter": t_mem / mem.n_iter_,
                       "loss_dask": f_big, "loss_in_memory": f_mem, "loss_rel_diff": rel}
    del Xm, ym


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory-limit", type=int, default=350, help="MB per worker (default 350)")
    ap.add_argument("--oversize", type=float, default=2.0, help="data size / summed memory limits (default 2)")
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--fits-rows", type=int, default=800_000, help="rows of the data that fits (default 800000)")
    ap.add_argument("--max-iter", type=int, default=30,
                    help="L-BFGS iterations of the per-iteration timing on data that fits (default 30)")
    ap.add_argument("--tol", type=float, default=1e-6,
                    help="the large fit and its in-memory twin run until the largest gradient entry is "
                         "below this (default 1e-6)")
    ap.add_argument("--quick", action="store_true", help="a quarter of the memory and rows")
    ap.add_argument("--skip-large", action="store_true", help="only the data that fits and the subsample")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    if args.quick:
        args.memory_limit, args.fits_rows, args.max_iter = 250, 100_000, 15
    import dask
    import distributed

    d, c, rows = args.features, args.classes, args.chunk_rows
    limit = args.memory_limit * 2**20
    chunk_bytes = rows * d * 4
    n_chunks = int(np.ceil(args.oversize * 2 * limit / chunk_bytes))
    report = {"cpu": cpu_model(), "cores": __import__("os").cpu_count(), "workers": 2, "threads_per_worker": 1,
              "memory_limit_bytes": limit, "features": d, "classes": c, "l2": L2, "max_iter": args.max_iter, "tol": args.tol}
    print(f"CPU: {report['cpu']} ({report['cores']} cores); 2 workers x 1 thread, memory_limit {args.memory_limit} MB each")

    def cluster(memory_limit=limit):
        return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                                        dashboard_address=None, silence_logs=logging.ERROR)

    # 1. larger than the cluster's memory, generated where it is used
    if not args.skip_large:
        large(args, report, cluster, n_chunks, rows, d, c, limit, chunk_bytes)

    # 2. data that fits: persisted in the workers, against the in-memory fit of the same rows
    n_fit = max(1, args.fits_rows // rows)
    Xs, ys = memory_data(n_fit, rows, d, c)
    mem, t_mem = timed_fit(Xs, ys, max_iter=args.max_iter)
    # no memory limit here: the workers would start spilling the persisted data
    # to disk at 60% of it, and this part times the computation, not the spilling
    with cluster(memory_limit=0) as lc, distributed.Client(lc) as client, dask.config.set(scheduler=client):
        X, y = dask_data(n_fit, rows, d, c)
        X, y = client.persist([X, y])
        distributed.wait([X, y])
        small, t_small = timed_fit(X, y, max_iter=args.max_iter)
    ratio = (t_small / small.n_iter_) / (t_mem / mem.n_iter_)
    f_small, f_mem = objective(small, Xs, ys), objective(mem, Xs, ys)
    print(f"\ndata that fits: X {Xs.shape} float32 ({Xs.nbytes / 2**20:.0f} MiB), persisted in the workers")
    print(f"  in memory: {mem.n_iter_} iterations, {t_mem / mem.n_iter_ * 1e3:.1f} ms/iteration")
    print(f"  Dask (2 workers): {small.n_iter_} iterations, {t_small / small.n_iter_ * 1e3:.1f} ms/iteration "
          f"= {ratio:.2f}x in memory")
    print(f"  final loss: Dask {f_small:.10f}, in memory {f_mem:.10f}, relative difference "
          f"{abs(f_small - f_mem) / f_mem:.2e}")
    report["fits"] = {"rows": int(Xs.shape[0]), "n_iter": small.n_iter_, "seconds_per_iter": t_small / small.n_iter_,
                      "in_memory_n_iter": mem.n_iter_, "in_memory_seconds_per_iter": t_mem / mem.n_iter_,
                      "ratio": ratio, "loss_dask": f_small, "loss_in_memory": f_mem}

    # 3. against scikit-learn on a subsample (the same objective: C = 1 / (l2 n))
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print("\nscikit-learn is not installed: no comparison")
    else:
        import dask.array as da
        Xq, yq = Xs[:20_000].astype(np.float64), ys[:20_000]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = LogisticRegression(C=1.0 / (L2 * len(yq)), max_iter=10_000, tol=1e-8).fit(Xq, yq)
        ours, _ = timed_fit(da.from_array(Xq, chunks=(5_000, d)), yq, tol=1e-8, max_iter=10_000)
        f_sk, f_ours = objective(sk, Xq, yq), objective(ours, Xq, yq)
        print(f"\nsubsample {Xq.shape}: final loss, scikit-learn {f_sk:.10f}, Dask fit {f_ours:.10f} "
              f"(relative difference {(f_ours - f_sk) / f_sk:+.2e})")
        report["sklearn_subsample"] = {"rows": len(yq), "loss_sklearn": f_sk, "loss_dask": f_ours}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"dask-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path}")
    return report


if __name__ == "__main__":
    # The worker processes are spawned and re-run the main module: by its path,
    # not by the name benchmarks.bench_dask, which they cannot import (the
    # package leaves the repository root off sys.path so that the installed
    # csoftmax is the one used).  Nothing runs there but the definitions.
    sys.modules["__main__"].__spec__ = None
    main()
