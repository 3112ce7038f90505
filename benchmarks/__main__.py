"""``python -m benchmarks``: time csoftmax beside its peers; see ``--help``."""
import argparse
import os
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time every csoftmax kernel side by side with the installed peers (NumPy, SciPy, "
                    "PyTorch, JAX, scikit-learn) and a memory-copy baseline, case by case, grouped by "
                    "function, then softmax at a few widths; print a table of medians, ratios and the "
                    "speed targets each case is held to, and save JSON, text and PNG results.")
    parser.add_argument("--sweep", action="store_true",
                        help="instead of the cases, the shape sweep: every softmax-family function and logsumexp, "
                             "float32 and float64, C from 2 to 32768 classes, in cache and out of cache, on 1 to N "
                             "threads, beside PyTorch and np.copyto; a table, JSON and a plot per function (10-15 "
                             "minutes; see benchmarks/sweep.py)")
    parser.add_argument("--quick", action="store_true",
                        help="few repeats and short samples, slow cases left out (about 1 minute); with --sweep: "
                             "3 widths and short bursts (1-2 minutes)")
    parser.add_argument("--filter", metavar="SUBSTR",
                        help="run only the cases whose name contains SUBSTR; with --sweep, the configurations "
                             "whose 'function dtype' (e.g. 'softmax f32') contains it")
    parser.add_argument("--threads", type=int, default=2, metavar="N",
                        help="threads for csoftmax, PyTorch, JAX, BLAS and OpenMP (default 2); the sweep runs "
                             "1, 2, 4, ... up to N")
    parser.add_argument("--out", default=Path(__file__).parent / "results", metavar="DIR",
                        help="where to write the results (default benchmarks/results/)")
    options = parser.parse_args(argv)
    if options.threads < 1:
        parser.error("--threads must be >= 1")
    # XLA reads its thread pool size when JAX is imported, so before the peers are.
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [
        os.environ.get("XLA_FLAGS"),
        f"--xla_cpu_multi_thread_eigen={'true' if options.threads > 1 else 'false'}",
        f"intra_op_parallelism_threads={options.threads}"]))
    if options.sweep:
        from .sweep import run
    else:
        from .suite import run
    run(options)


if __name__ == "__main__":
    main()
