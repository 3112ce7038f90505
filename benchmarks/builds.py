"""Two builds of csoftmax side by side: ``python -m benchmarks.builds --other PYTHON``.

The same kernels, built two ways (GCC and clang, two sets of flags, two
commits), installed in two environments.  One Python process cannot import
both, so each build runs in a worker process of its own interpreter (this one
and ``--other``), started from outside the source tree; the workers are asked
in turn for one sample at a time, alternating which goes first, so that the
machine's noise falls on both alike.  A sample is the mean over a burst of
back-to-back calls lasting about ``--min-time`` seconds, on arrays made once
per case in each worker (the sweep's in-cache size: 409600 entries).

Prints, per case, each build's median time per entry and the ratio other /
this, and writes them as JSON into ``--out``.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The worker: its own interpreter, its own csoftmax.  Each request line is
# "function dtype C size threads number"; it answers with seconds per call.
WORKER = r"""
import sys, time, numpy as np, csoftmax as cs
print(cs.__file__, cs._runtime.isa(), flush=True)
cache = {}
for line in sys.stdin:
    fn, dt, C, size, threads, number = line.split()
    C, size, threads, number = int(C), int(size), int(threads), int(number)
    key = (fn, dt, C, size)
    if key not in cache:
        rng = np.random.default_rng(0)
        rows = max(1, size // C)
        x = (3 * rng.standard_normal((rows, C))).astype(dt)
        g = rng.standard_normal((rows, C)).astype(dt)
        y = np.empty_like(x)
        f = getattr(cs, fn)
        if fn.endswith("backward"):
            s = (cs.softmax if fn == "softmax_backward" else cs.log_softmax)(x, axis=-1)
            cache[key] = lambda f=f, s=s, g=g, y=y: f(s, g, axis=-1, out=y)
        else:
            cache[key] = lambda f=f, x=x, y=y: f(x, axis=-1, out=y)
        cache[key]()
    cs.set_num_threads(threads)
    call = cache[key]
    t0 = time.perf_counter()
    for _ in range(number):
        call()
    print((time.perf_counter() - t0) / number, flush=True)
"""

FUNCTIONS = ["softmax", "log_softmax", "softmax_backward", "log_softmax_backward"]
WIDTHS = [16, 64, 100, 256, 1000, 4096]
SIZE = 409600


class Worker:
    def __init__(self, python):
        self.proc = subprocess.Popen([python, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=tempfile.gettempdir())
        self.where = self.proc.stdout.readline().strip()
        if not self.where:
            raise SystemExit(f"{python}: could not import csoftmax")

    def sample(self, case, number):
        self.proc.stdin.write(" ".join(map(str, case + (number,))) + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def compare(this, other, case, repeats, min_time):
    per_call = this.sample(case, 1)
    other.sample(case, 1)
    number = max(1, int(min_time / max(per_call, 1e-7)))
    a, b = [], []
    for r in range(repeats):
        pair = [(this, a), (other, b)]
        for worker, samples in pair if r % 2 == 0 else pair[::-1]:
            samples.append(worker.sample(case, number))
    return statistics.median(a), statistics.median(b)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.builds", description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", required=True, metavar="PYTHON",
                        help="the interpreter of the other build's environment")
    parser.add_argument("--label", default="other", help="a name for the other build (default: other)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="comma-separated (default: all four)")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="class counts C (comma-separated)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--min-time", type=float, default=0.02)
    parser.add_argument("--out", default=Path(__file__).parent / "results", metavar="DIR")
    o = parser.parse_args(argv)
    this, other = Worker(sys.executable), Worker(o.other)
    print(f"this:  {this.where}\n{o.label}: {other.where}")
    print(f"{SIZE} entries a call, {o.threads} thread(s); ns an entry (medians of {o.repeats} "
          f"interleaved samples)\n")
    print(f"{'function':22} {'dtype':8} {'C':>6} {'this':>8} {o.label:>8} {o.label + '/this':>12}")
    rows = []
    try:
        for fn in o.functions.split(","):
            for dt in o.dtypes.split(","):
                for C in map(int, o.widths.split(",")):
                    ta, tb = compare(this, other, (fn, dt, C, SIZE, o.threads), o.repeats, o.min_time)
                    n = max(1, SIZE // C) * C
                    rows.append(dict(function=fn, dtype=dt, C=C, threads=o.threads, this=ta, other=tb))
                    print(f"{fn:22} {dt:8} {C:>6} {1e9 * ta / n:8.3f} {1e9 * tb / n:8.3f} {tb / ta:12.2f}",
                          flush=True)
    finally:
        this.close()
        other.close()
    os.makedirs(o.out, exist_ok=True)
    path = Path(o.out) / f"builds-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(dict(this=this.where, other=other.where, label=o.label, rows=rows), indent=1))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
