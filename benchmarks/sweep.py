"""The shape sweep: csoftmax's time per entry as the number of classes C varies,
beside PyTorch and a memory copy.

``python -m benchmarks --sweep`` times, for every combination of

* function: softmax, log_softmax, softmax_backward, log_softmax_backward,
  cross_entropy_grad, logsumexp (over the last axis of a C-contiguous
  ``(N, C)`` array);
* dtype: float32, float64;
* C in ``WIDTHS`` (2 to 32768);
* size: in cache (``SIZES["in cache"]`` = 409600 entries a call) and out of
  cache (8192000 entries); ``N = size // C`` rows, at least 1;
* threads: 1, 2, 4, ... up to ``--threads`` (default 2),

these implementations:

* ``cs out=``: csoftmax writing into a preallocated output; the ratios and
  targets are read from it;
* ``csoftmax``: csoftmax allocating its output;
* ``torch``: ``torch.softmax`` / ``torch.log_softmax`` / ``torch.logsumexp``
  with ``out=``; for the backward passes the aten kernels behind autograd,
  ``_softmax_backward_data`` / ``_log_softmax_backward_data`` with ``out=``;
  for cross_entropy_grad ``F.cross_entropy`` forward and backward;
* ``copy``: ``np.copyto`` of the input array into a preallocated one (NumPy
  copies on one thread): the memory floor;
* ``mul`` (backward passes only): ``np.multiply`` of their two inputs into a
  preallocated array, one thread: one pass that reads two arrays and writes
  one, the backward passes' traffic with next to no arithmetic, their floor
  as the copy is the forward's.  A backward pass needs a row's sum before its
  output, so it reads the row twice, the second time from L1 (or holds it in
  registers); it can approach this floor but not pass it.

Each implementation is timed in bursts of back-to-back calls, bursts of the
different implementations taken in turn (:func:`benchmarks.timing.measure`):
threads that wait between calls of one library stay awake, where single calls
alternating with another library's let the OpenMP pool fall asleep and read the
threaded time up to twice too slow.  The median of the bursts' per-call times is
reported.

Targets, flagged in the table and counted at the end:

* in cache, ``cs out= / torch <= 0.8`` for every function, dtype, C and thread
  count (cross_entropy_grad: ``<= 0.5`` of PyTorch's forward + backward);
* out of cache, float32 softmax on 2 threads: ``cs out= / copy <= 1.4`` for C
  in ``COPY_TARGET_WIDTHS``.

A row whose ``cs out=``, ``torch`` or ``copy`` median is more than ``UNSTEADY``
times that implementation's fastest burst is marked unsteady (in the table, and
with a ``*`` in the summary): the machine held those calls up for part of the
run.  On a shared two-core guest that happens to two-thread calls, in spells:
there, log_softmax of (25600, 16) float32 on two threads, right after ten
milliseconds of single-threaded work, took a median 1.6 ms for its first call
(0.18 ms within a burst) and up to 15-21 ms for some of the next ten, and
PyTorch's calls were held up too.  Read such a row's ratio again from a rerun,
not as the kernel's.

Options (``python -m benchmarks --help``):

``--sweep``
    run this sweep instead of the suite's cases (10-15 minutes on 2 cores);
``--quick``
    with ``--sweep``: the widths ``QUICK_WIDTHS`` only, fewer and shorter
    bursts (about 1-2 minutes), for checking that it runs;
``--filter SUBSTR``
    only the configurations whose label "function dtype" (``softmax f32``,
    ``cross_entropy_grad f64``, ...) contains SUBSTR;
``--threads N``
    the largest thread count;
``--out DIR``
    where ``sweep-<time>.json``, ``.txt`` and a PNG per function (time / PyTorch
    against C) go.

The suite's own run ends with :func:`short`: float32 softmax in cache at
``SHORT_WIDTHS``, on 1 and ``--threads`` threads.
"""
import gc
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

import csoftmax

from . import report
from .data import F32, F64, labels, logits, placed, tag
from .peers import load_average, machine_info, num_threads, torch, torch_cross_entropy_fwd_bwd
from .timing import Mode, measure

FUNCTIONS = ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy_grad",
             "logsumexp")
WIDTHS = (2, 8, 16, 24, 33, 48, 64, 100, 128, 200, 256, 384, 512, 1000, 2048, 4096, 10000, 32768)
QUICK_WIDTHS = (16, 100, 1000)
SHORT_WIDTHS = (16, 64, 100, 1000, 10000)
# In cache: 409600 entries, 1.6 MB a float32 array (3.3 MB float64), which a
# core's L2 of a few MB and the L3 behind it hold with the output.  Out of
# cache: 20 times as many, 33-66 MB an array, beyond the L3 share of a few cores.
SIZES = {"in cache": 409_600, "out of cache": 8_192_000}
IN_CACHE_LIMIT = 0.8
IN_CACHE_LIMIT_LOSS = 0.5  # the fused loss and gradient against PyTorch's two passes
COPY_LIMIT = 1.4
UNSTEADY = 2.0  # a median over this many times the fastest burst marks a row unsteady
COPY_TARGET_WIDTHS = (16, 64, 100, 256, 1000, 4096)
COPY_TARGET_THREADS = 2

# An in-cache call takes 0.2-25 ms, so a 10-ms burst is up to 50 calls; an
# out-of-cache call takes 5-300 ms and a burst is one call, of which the budget
# keeps five.  10-15 minutes in all on 2 cores.
FULL = Mode(repeats=7, min_repeats=5, min_time=0.01, budget=0.5)
QUICK = Mode(repeats=3, min_repeats=3, min_time=0.003, budget=0.1)

PRIMARY = "cs out="
NAMES = (PRIMARY, "csoftmax", "torch", "copy", "mul")  # the table's columns
# Ratios to label on the plots' log axes.
Y_TICKS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 1, 1.2, 1.5, 2, 3, 5, 10, 20, 50)
TORCH_NOTES = {
    "softmax": "torch.softmax(out=)",
    "log_softmax": "torch.log_softmax(out=)",
    "softmax_backward": "aten._softmax_backward_data(out=)",
    "log_softmax_backward": "aten._log_softmax_backward_data(out=)",
    "cross_entropy_grad": "F.cross_entropy forward + backward",
    "logsumexp": "torch.logsumexp(out=)",
}


@dataclass
class Buffers:
    """The arrays of one dtype and size, shared by every width: each width takes
    an ``(N, C)`` view of their first ``N * C`` entries, so no width pays for
    fresh pages.  All of them are ``placed``: each library's output lies at
    the same offset from the inputs modulo 4 KiB."""
    dtype: type
    size: int

    @cached_property
    def x(self):
        return placed(logits(self.size, self.dtype))

    @cached_property
    def g(self):
        return placed(logits(self.size, self.dtype, seed=2))

    @cached_property
    def s(self):
        """The backward passes' softmax or log-softmax input, written per width."""
        return placed(np.empty(self.size, self.dtype))

    @cached_property
    def outputs(self):
        """csoftmax's, PyTorch's and the copy's outputs."""
        return tuple(placed(np.empty(self.size, self.dtype)) for _ in range(3))

    def view(self, a, n_classes):
        rows = max(1, self.size // n_classes)
        return a[:rows * n_classes].reshape(rows, n_classes)


def implementations(function, buffers, n_classes):
    """The argument-free callables timed for ``function`` on ``(N, C)`` arrays."""
    x = buffers.view(buffers.x, n_classes)
    out, torch_out, copy_out = (buffers.view(a, n_classes) for a in buffers.outputs)
    if function in ("softmax", "log_softmax"):
        ours, src = getattr(csoftmax, function), x
        impls = {PRIMARY: lambda: ours(x, axis=-1, out=out), "csoftmax": lambda: ours(x, axis=-1)}
        if torch:
            xt, ot, torch_fn = torch.from_numpy(x), torch.from_numpy(torch_out), getattr(torch, function)
            impls["torch"] = lambda: torch_fn(xt, -1, out=ot)
    elif function in ("softmax_backward", "log_softmax_backward"):
        log = function == "log_softmax_backward"
        g = buffers.view(buffers.g, n_classes)
        src = buffers.view(buffers.s, n_classes)
        (csoftmax.log_softmax if log else csoftmax.softmax)(x, axis=-1, out=src)
        ours = getattr(csoftmax, function)
        impls = {PRIMARY: lambda: ours(src, g, out=out), "csoftmax": lambda: ours(src, g)}
        if torch:
            st, gt, ot = torch.from_numpy(src), torch.from_numpy(g), torch.from_numpy(torch_out)
            if log:
                aten = torch.ops.aten._log_softmax_backward_data.out
                impls["torch"] = lambda: aten(gt, st, -1, st.dtype, out=ot)
            else:
                aten = torch.ops.aten._softmax_backward_data.out
                impls["torch"] = lambda: aten(gt, st, -1, st.dtype, grad_input=ot)
        impls["mul"] = lambda: np.multiply(src, g, out=copy_out)
    elif function == "logsumexp":
        src, rows = x, x.shape[0]
        out, torch_out = out.reshape(-1)[:rows], torch_out.reshape(-1)[:rows]
        impls = {PRIMARY: lambda: csoftmax.logsumexp(x, axis=-1, out=out),
                 "csoftmax": lambda: csoftmax.logsumexp(x, axis=-1)}
        if torch:
            xt, ot = torch.from_numpy(x), torch.from_numpy(torch_out)
            impls["torch"] = lambda: torch.logsumexp(xt, -1, out=ot)
    else:
        y, src = labels(*x.shape), x
        impls = {PRIMARY: lambda: csoftmax.cross_entropy_grad(x, y, out=out),
                 "csoftmax": lambda: csoftmax.cross_entropy_grad(x, y)}
        if torch:
            impls["torch"] = torch_cross_entropy_fwd_bwd(x, y)
    impls["copy"] = lambda: np.copyto(copy_out, src)
    return impls


def thread_counts(most):
    """1, 2, 4, ... below ``most``, and ``most``."""
    counts = [1]
    while counts[-1] * 2 < most:
        counts.append(counts[-1] * 2)
    return counts + [most] * (most > 1)


def _ratio(a, b):
    return a / b if a is not None and b else None


def targets(row):
    """The targets that apply to a row of the sweep, evaluated."""
    if row["cache"] == "in cache":
        loss = row["function"] == "cross_entropy_grad"
        peer, limit = ("torch fwd+bwd", IN_CACHE_LIMIT_LOSS) if loss else ("torch", IN_CACHE_LIMIT)
        value = row["cs/torch"]
    elif ((row["function"], row["dtype"], row["threads"]) == ("softmax", "f32", COPY_TARGET_THREADS)
          and row["C"] in COPY_TARGET_WIDTHS):
        peer, limit, value = "copy", COPY_LIMIT, row["cs/copy"]
    else:
        return []
    return [report.target_row("sweep", label(row), f"{PRIMARY} / {peer}", limit, value)]


def unsteady(row):
    """Whether a median the row's ratios divide (csoftmax out=, PyTorch's, the
    copy's) is over UNSTEADY times that implementation's fastest burst."""
    for name in (PRIMARY, "torch", "copy"):
        t = row["implementations"].get(name)
        if t and not t["error"] and t["samples"] and t["median"] > UNSTEADY * t["min"]:
            return True
    return False


def label(row):
    return (f"{row['function']} {row['dtype']} {row['cache']} C={row['C']} N={row['N']} "
            f"{row['threads']} thread{'s' * (row['threads'] > 1)}")


def run_config(function, buffers, cache, n_classes, threads, mode):
    """One row of the sweep: every implementation timed on one configuration."""
    impls = implementations(function, buffers, n_classes)
    with num_threads(threads):
        timings = measure(impls, mode)
    rows = max(1, buffers.size // n_classes)
    medians = {name: t.median for name, t in timings.items()}
    row = {"function": function, "dtype": tag(buffers.dtype), "cache": cache, "C": n_classes, "N": rows,
           "threads": threads,
           "ns_per_entry": {name: m and m / (rows * n_classes) * 1e9 for name, m in medians.items()},
           "cs/torch": _ratio(medians[PRIMARY], medians.get("torch")),
           "cs/copy": _ratio(medians[PRIMARY], medians["copy"]),
           "implementations": {name: {"median": t.median, "min": t.min, "number": t.number,
                                      "samples": t.samples, "error": t.error}
                               for name, t in timings.items()}}
    row["targets"] = targets(row)
    row["unsteady"] = unsteady(row)
    return row


def table_head(function, dtype, cache, size):
    columns = "".join(f"{name:>10}" for name in NAMES)
    return [f"{function} {tag(dtype)}, {cache} ({size} entries a call; torch: {TORCH_NOTES[function]}); "
            "ns per entry",
            f"  {'C':>6}{'N':>9}{'thr':>5}{columns}{'cs/torch':>10}{'cs/copy':>9}  target"]


def table_row(row):
    def ns(name):
        t = row["implementations"].get(name)
        if t is None:
            return f"{'-':>10}"
        return f"{'ERROR':>10}" if t["error"] else f"{row['ns_per_entry'][name]:>10.3g}"
    target = "; ".join(f"{t['what'].removeprefix(PRIMARY + ' / ')} <= {t['limit']:g}: {t['verdict']}"
                       for t in row["targets"]) + (" (unsteady)" if row.get("unsteady") else "")
    return (f"  {row['C']:>6}{row['N']:>9}{row['threads']:>5}{''.join(ns(name) for name in NAMES)}"
            f"{report.fmt_ratio(row['cs/torch']):>10}{report.fmt_ratio(row['cs/copy']):>9}  {target}").rstrip()


def errors(row):
    return [f"    {name}: {t['error']}" for name, t in row["implementations"].items() if t["error"]]


def sweep(functions, dtypes, caches, widths, threads, mode, emit):
    """Time every configuration, ``emit`` the table lines as they come; return the rows."""
    rows = []
    for function in functions:
        for dtype in dtypes:
            for cache in caches:
                buffers = Buffers(dtype, SIZES[cache])
                emit(table_head(function, dtype, cache, buffers.size))
                for n_classes in widths:
                    for n in threads:
                        row = run_config(function, buffers, cache, n_classes, n, mode)
                        rows.append(row)
                        emit([table_row(row)] + errors(row))
                emit([""])
                del buffers
                gc.collect()  # free a dtype's buffers before the next one allocates
    return rows


def short(options, emit):
    """The suite's look at the sweep: float32 softmax in cache at a few widths,
    on one thread and on ``--threads``, timed as the sweep times them."""
    return sweep(["softmax"], [F32], ["in cache"], SHORT_WIDTHS, sorted({1, options.threads}),
                 QUICK if options.quick else FULL, emit)


def summary(rows):
    """Per function and target: how many configurations meet it, and the widths
    that miss it for each dtype and thread count."""
    lines = [f"Sweep targets (ratios of medians; {PRIMARY}: csoftmax with a preallocated output)"]
    kinds = {}
    for row in rows:
        for t in row["targets"]:
            kinds.setdefault((row["function"], row["cache"], t["what"], t["limit"]), []).append((row, t))
    for (function, cache, what, limit), items in kinds.items():
        met = sum(t["verdict"] == "ok" for _, t in items)
        lines.append(f"  {function}, {cache}: {what} <= {limit:g}: {met} of {len(items)} ok"
                     + ("; missed at C (ratio):" if met < len(items) else ""))
        missed = {}
        for row, t in items:
            if t["verdict"] != "ok":
                missed.setdefault((row["dtype"], row["threads"]), []).append(
                    f"{row['C']} ({report.fmt_ratio(t['value'])}{'*' if row.get('unsteady') else ''})")
        for (dtype, n), widths in sorted(missed.items()):
            lines += _wrap(f"      {dtype}, {n} thread{'s' * (n > 1)}: ", widths)
    if any(row.get("unsteady") for row in rows):
        lines.append(f"  * unsteady: a median over {UNSTEADY:g} times the fastest burst (the machine held "
                     "calls up); rerun before reading it as the kernel's")
    return lines


def _wrap(head, items, width=110):
    """``head`` and the comma-separated ``items``, over lines of about ``width``, an item never split."""
    lines, line = [], head
    for k, item in enumerate(items):
        text = item + ("," if k + 1 < len(items) else "")
        if len(line) + len(text) > width and line.strip():
            lines.append(line.rstrip())
            line = " " * 8
        line += text + " "
    return lines + [line.rstrip()]


def write_plots(stem, rows, title):
    """A PNG per function: csoftmax out= / PyTorch against C, in cache and out of
    cache side by side, a line per dtype and thread count; returns the paths."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    for function in dict.fromkeys(row["function"] for row in rows):
        mine = [row for row in rows if row["function"] == function and row["cs/torch"]]
        if not mine:
            continue
        caches = list(dict.fromkeys(row["cache"] for row in mine))
        fig, axes = plt.subplots(1, len(caches), figsize=(6 * len(caches), 4.2), sharey=True, squeeze=False,
                                 layout="constrained")
        for ax, cache in zip(axes[0], caches):
            lines = {}
            for row in mine:
                if row["cache"] == cache:
                    lines.setdefault((row["dtype"], row["threads"]), []).append((row["C"], row["cs/torch"]))
            for (dtype, n), points in sorted(lines.items()):
                xs, ys = zip(*sorted(points))
                ax.plot(xs, ys, color="tab:blue" if dtype == "f32" else "tab:orange",
                        linestyle="-" if n == 1 else "--", marker="o" if n == 1 else "s", markersize=3,
                        label=f"{dtype}, {n} thread{'s' * (n > 1)}")
            ax.axhline(1.0, color="black", linewidth=0.8)
            if cache == "in cache":
                limit = IN_CACHE_LIMIT_LOSS if function == "cross_entropy_grad" else IN_CACHE_LIMIT
                ax.axhline(limit, color="tab:red", linewidth=0.8, linestyle=":", label=f"target {limit:g}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("C (classes; N = size // C rows)")
            ax.set_title(f"{cache} ({SIZES[cache]} entries a call)", fontsize=9)
            ax.grid(True, linewidth=0.3, alpha=0.5)
            ax.legend(fontsize=7)
        axes[0][0].set_ylabel(f"time / PyTorch ({TORCH_NOTES[function]})", fontsize=8)
        lo, hi = axes[0][0].get_ylim()
        for ax in axes[0]:
            ax.set_yticks([t for t in Y_TICKS if lo <= t <= hi], minor=False)
            ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xticks(sorted({row["C"] for row in mine}), minor=False)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%d"))
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.tick_params(axis="both", labelsize=7)
            ax.tick_params(axis="x", labelrotation=60)
        fig.suptitle(f"{function}: csoftmax (out=) / PyTorch; {title}", fontsize=9)
        path = Path(f"{stem}-{function}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def run(options):
    """``python -m benchmarks --sweep``: the whole sweep, printed and saved."""
    mode = QUICK if options.quick else FULL
    widths = QUICK_WIDTHS if options.quick else WIDTHS
    picked = [(f, d) for f in FUNCTIONS for d in (F32, F64)
              if options.filter is None or options.filter in f"{f} {tag(d)}"]
    if not picked:
        raise SystemExit(f"--filter {options.filter!r} matches none of the sweep's 'function dtype' labels "
                         f"({', '.join(FUNCTIONS)} with f32 or f64)")
    machine = machine_info(options.threads)
    threads = thread_counts(options.threads)
    lines = report.header(machine) + [
        f"shape sweep{' (quick)' if options.quick else ''}: C in {', '.join(map(str, widths))}; threads "
        f"{', '.join(map(str, threads))}; medians of up to {mode.repeats} bursts per implementation, "
        f"each >= {mode.min_time * 1e3:g} ms of back-to-back calls, bursts of the implementations in turn.",
        f"{PRIMARY}: csoftmax into a preallocated output; csoftmax: allocating it; copy: np.copyto of the input; "
        f"mul (backward passes): np.multiply of the two inputs, the traffic floor of a pass that reads two "
        f"arrays and writes one; cs/torch, cs/copy: {PRIMARY}'s median over theirs.", ""]
    print("\n".join(lines), flush=True)

    def emit(new):
        print("\n".join(new), flush=True)
        lines.extend(new)

    start = time.perf_counter()
    rows = []
    for function, dtype in picked:
        rows += sweep([function], [dtype], list(SIZES), widths, threads, mode, emit)
    machine["load_average_end"] = load_average()
    emit(summary(rows) + [report.closing(machine, time.perf_counter() - start)])

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / time.strftime("sweep-%Y%m%d-%H%M%S")
    settings = {"quick": options.quick, "filter": options.filter, "threads": threads, "widths": widths,
                "sizes": SIZES, "mode": vars(mode)}
    report.write_json(stem.with_suffix(".json"), [], machine, settings, sweep=rows)
    stem.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    written = [stem.with_suffix(".json"), stem.with_suffix(".txt")]
    written += write_plots(stem, rows, report.levels(machine))
    print("wrote " + ", ".join(map(str, written)))
    return rows
