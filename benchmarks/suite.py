"""Run the selected cases one after another, group by group, then a short shape sweep, and report them."""
import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import bench_backward, bench_forward, bench_loss, bench_options, bench_regression  # noqa: F401  (they register)
from . import report, sweep
from .peers import limit_threads, load_average, machine_info
from .registry import CASES, GROUPS
from .timing import FULL, QUICK, measure

SHORT_SWEEP = "Shape sweep: softmax f32 in cache"


@dataclass
class CaseResult:
    name: str
    group: str
    baseline: str = "copy"
    primary: str = "csoftmax"
    notes: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    check: str | None = None
    error: str | None = None
    targets: list = field(default_factory=list)


def select(options):
    """The cases the options pick, group by group: ``--filter`` by name;
    ``--quick`` leaves out the slow ones unless a filter picks cases explicitly."""
    order = list(GROUPS)
    return sorted((c for c in CASES
                   if (options.filter is None or options.filter in c.name)
                   and not (options.quick and c.slow and options.filter is None)),
                  key=lambda c: order.index(c.group))


def _arrays(result):
    items = result if isinstance(result, tuple) else (result,)
    out = []
    for a in items:
        if a is None:
            continue
        if hasattr(a, "detach"):
            a = a.detach().numpy()
        out.append(np.asarray(a))
    return out


def check(setup, primary):
    """csoftmax's result against the reference's: the worst relative difference."""
    if setup.reference not in setup.impls:
        return None
    ours, ref = _arrays(setup.impls[primary]()), _arrays(setup.impls[setup.reference]())
    if len(ours) != len(ref):
        return f"MISMATCH: {len(ours)} results vs {len(ref)} from {setup.reference}"
    worst, ok = 0.0, True
    for a, b in zip(ours, ref):
        if a.shape != b.shape:
            return f"MISMATCH: shape {a.shape} vs {b.shape} from {setup.reference}"
        eps = np.finfo(a.dtype if a.dtype.kind == "f" else np.float64).eps
        with np.errstate(all="ignore"):
            scale = float(np.max(np.abs(b), initial=0.0)) or 1.0
            diff = float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0)) / scale
        ok &= diff <= 1e3 * eps  # a nan fails here
        worst = diff if not diff <= worst else worst  # and is kept here
    verdict = "ok" if ok else "MISMATCH"
    return f"{primary} vs {setup.reference}: max |diff| / max |ref| = {worst:.2g} ({verdict})"


def run_case(case, options, mode):
    result = CaseResult(case.name, case.group)
    try:
        setup = case.make(options)
        result.baseline, result.notes = setup.baseline, setup.notes
        result.primary = next(iter(setup.impls))
        try:
            result.check = check(setup, result.primary)
        except Exception as exc:
            result.check = f"could not check: {type(exc).__name__}: {exc}"
        result.timings = measure(setup.impls, mode, calibrate=setup.calibrate, repeats=setup.repeats)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def run(options):
    mode = QUICK if options.quick else FULL
    cases = select(options)
    run_short = options.filter is None or options.filter in SHORT_SWEEP
    threads_limit = limit_threads(options.threads)  # noqa: F841  (holds the limit)
    machine = machine_info(options.threads)
    lines = report.header(machine) + [
        f"{'quick' if options.quick else 'full'} run on {options.threads} threads: medians of up to {mode.repeats} "
        f"interleaved repeats, each the mean of an inner loop of >= {mode.min_time * 1e3:g} ms. "
        "'x <baseline>' = median / baseline's median; 'cs/peer' = csoftmax's median / this median.", ""]
    print("\n".join(lines), flush=True)

    def emit(new):
        print("\n".join(new), flush=True)
        lines.extend(new)

    results, medians, group = [], {}, None
    start = time.perf_counter()
    for case in cases:
        if case.group != group:
            group = case.group
            emit([f"== {GROUPS[group]}", ""])
        result = run_case(case, options, mode)
        medians[case.name] = {name: t.median for name, t in result.timings.items()}
        result.targets = report.evaluate_targets(case, medians)
        results.append(result)
        emit(report.table(result) + [""])
        gc.collect()  # free the case's arrays before the next one allocates
    sweep_rows = []
    if run_short:
        emit([f"== {SHORT_SWEEP} (python -m benchmarks --sweep for every function, dtype and size)", ""])
        sweep_rows = sweep.short(options, emit)
    skipped = [c.name for c in CASES if c not in cases and options.filter is None]
    targets = [t for r in results for t in r.targets] + [t for row in sweep_rows for t in row["targets"]]
    tail = report.summary(targets, {**GROUPS, "sweep": SHORT_SWEEP})
    tail += [f"skipped (slow, run without --quick): {', '.join(skipped)}"] * bool(skipped)
    machine["load_average_end"] = load_average()
    emit(tail + [report.closing(machine, time.perf_counter() - start)])

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / time.strftime("bench-%Y%m%d-%H%M%S")
    settings = {"quick": options.quick, "filter": options.filter, "threads": options.threads, "mode": vars(mode)}
    report.write_json(stem.with_suffix(".json"), results, machine, settings, sweep=sweep_rows)
    stem.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    written = [stem.with_suffix(".json"), stem.with_suffix(".txt")]
    title = f"csoftmax benchmarks, {options.threads} threads, {report.levels(machine)}"
    if report.write_plot(stem.with_suffix(".png"), results, title):
        written.append(stem.with_suffix(".png"))
    print("wrote " + ", ".join(map(str, written)))
    return results
