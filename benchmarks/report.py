"""Tables of medians and ratios, the speed targets, and the JSON and PNG files."""
import json
import math

from .registry import GROUPS


def fmt_time(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"


def fmt_ratio(r):
    if r is None or not math.isfinite(r):
        return "-"
    return f"{r:.3g}" if r < 100 else f"{r:.0f}"


def _ratio(a, b):
    return a / b if a is not None and b else None


def table(result):
    """The printed lines of one case: an implementation a row, then checks and targets."""
    head = result.name
    if result.error:
        return [head, f"  ERROR setting up: {result.error}"]
    base = result.timings.get(result.baseline)
    ours = result.timings.get(result.primary)
    base_med, ours_med = base and base.median, ours and ours.median
    xcol = f"x {result.baseline}"
    width = max(len(xcol), 8)
    lines = [head, f"  {'implementation':<34}{'median':>10}{'min':>10}  {xcol:>{width}}{'cs/peer':>9}  samples"]
    for name, t in result.timings.items():
        if t.error:
            lines.append(f"  {name:<34}  ERROR {t.error}")
            continue
        lines.append(f"  {name:<34}{fmt_time(t.median):>10}{fmt_time(t.min):>10}  "
                     f"{fmt_ratio(_ratio(t.median, base_med)):>{width}}"
                     f"{fmt_ratio(_ratio(ours_med, t.median)):>9}  {len(t.samples)}x{t.number}")
    lines += [f"  note: {n}" for n in result.notes]
    if result.check:
        lines.append(f"  check: {result.check}")
    lines += [f"  target: {target_text(t)}" for t in result.targets]
    return lines


def evaluate_targets(case, medians):
    """Each target of ``case`` against the medians so far ``{case: {impl: seconds}}``.

    A target on "csoftmax" is also read for "csoftmax out=" where that was timed
    (the call with a preallocated output, free of page faults on fresh memory).
    """
    rows = []
    for target in case.targets:
        mine = medians[case.name]
        if target.peer is None:
            what, peer = f"{target.impl} per call", 1.0
        else:
            peer_case = target.peer_case or case.name
            where = f" of '{peer_case}'" if target.peer_case else ""
            what, peer = f"{target.impl} / {target.peer}{where}", medians.get(peer_case, {}).get(target.peer)
        value = _ratio(mine.get(target.impl), peer)
        with_out = _ratio(mine.get("csoftmax out="), peer) if target.impl == "csoftmax" != target.peer else None
        rows.append(target_row(case.group, case.name, what, target.limit, value, with_out,
                               absolute=target.peer is None))
    return rows


VERDICTS = ("ok", "ok with out=", "MISSED", "not measured")


def target_row(group, case, what, limit, value, value_out=None, *, absolute=False):
    """A target's outcome as reported and saved: ``value <= limit`` (``value_out``:
    the same with a preallocated output, which also meets the target)."""
    if value is None:
        verdict = "not measured"
    elif value <= limit:
        verdict = "ok"
    else:
        verdict = "ok with out=" if value_out is not None and value_out <= limit else "MISSED"
    return {"group": group, "case": case, "what": what, "limit": limit, "absolute": absolute,
            "value": value, "value_out": value_out, "verdict": verdict}


def target_text(row):
    """``csoftmax / torch <= 1: ok (0.8)``, with the out= reading where there is one."""
    fmt = fmt_time if row["absolute"] else fmt_ratio
    measured = fmt(row["value"]) + (f"; out=: {fmt(row['value_out'])}" if row["value_out"] is not None else "")
    return f"{row['what']} <= {fmt(row['limit'])}: {row['verdict']} ({measured})"


def summary(rows, headings=GROUPS):
    """Every target, under its group's heading, and a count of the verdicts."""
    lines = ["Targets (ratios of medians)"]
    groups = list(headings) + [g for g in dict.fromkeys(r["group"] for r in rows) if g not in headings]
    for group in groups:
        mine = [r for r in rows if r["group"] == group]
        if mine:
            lines.append(f"  {headings.get(group, group)}")
            lines += [f"    {r['case']}: {target_text(r)}" for r in mine]
    counts = [(sum(r["verdict"] == verdict for r in rows), verdict) for verdict in VERDICTS]
    lines.append("  " + (", ".join(f"{n} {verdict}" for n, verdict in counts if n) or "no targets"))
    return lines


def levels(machine):
    """The CPU and the vector levels timed on it: csoftmax's kernels and, when it
    is there, PyTorch's (each can be lowered, by CSOFTMAX_ISA and ATEN_CPU_CAPABILITY)."""
    torch_level = machine.get("torch_cpu_capability")
    return f"{machine['cpu']} ({machine['csoftmax_isa']}" + (f"; torch {torch_level})" if torch_level else ")")


def header(machine):
    """The first lines of a run: what was timed, on what, beside which peers."""
    torch_level = machine.get("torch_cpu_capability")
    return [f"csoftmax {machine['csoftmax']} ({machine['csoftmax_isa']}) from {machine['csoftmax_file']}",
            f"{machine['cpu']} x{machine['cpu_count']}, load average {machine['load_average']}; "
            f"numpy {machine['numpy']}, scipy {machine['scipy']}, torch {machine['torch']}"
            + (f" ({torch_level})" if torch_level else "") + f", jax {machine['jax']}, "
            f"sklearn {machine['sklearn']}"]


def closing(machine, seconds):
    """The last line of a run: how long it took and how busy the machine was."""
    loads = (machine["load_average"], machine["load_average_end"])
    busy = max(filter(None, loads), default=0) > machine["cpu_count"]
    return (f"total {seconds:.0f} s; load average {loads[0]} at the start, {loads[1]} at the end"
            + (" (above the core count: other work competed for the cores, and threaded timings suffer most)"
               if busy else ""))


def write_json(path, results, machine, options, sweep=()):
    """The cases' timings and targets, and the rows of a shape sweep."""
    doc = {
        "machine": machine,
        "options": options,
        "sweep": list(sweep),
        "cases": [{
            "name": r.name, "group": r.group, "baseline": r.baseline, "csoftmax": r.primary,
            "notes": r.notes, "check": r.check, "error": r.error, "targets": r.targets,
            "implementations": {name: {"median": t.median, "min": t.min, "number": t.number,
                                       "samples": t.samples, "error": t.error}
                                for name, t in r.timings.items()},
        } for r in results],
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)


def write_plot(path, results, title):
    """Horizontal bars: each implementation's median over its case's baseline, log scale."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = []
    for r in results:
        base = r.timings.get(r.baseline)
        if r.error or base is None or not base.median:
            continue
        rows = [(name, t.median / base.median) for name, t in r.timings.items() if t.median]
        panels.append((r, rows[::-1]))
    if not panels:
        return False
    heights = [len(rows) + 1.5 for _, rows in panels]
    n_cols = 1 if len(panels) < 6 else 2
    split = _balanced_split(heights, n_cols)
    lo = min(v for _, rows in panels for _, v in rows)
    hi = max(v for _, rows in panels for _, v in rows)
    fig = plt.figure(figsize=(7 * n_cols, 0.2 * max(sum(heights[i:j]) for i, j in split) + 1),
                     layout="constrained")
    for sub, (i, j) in zip(fig.subfigures(1, n_cols, squeeze=False)[0], split):
        axes = sub.subplots(j - i, 1, squeeze=False, gridspec_kw={"height_ratios": heights[i:j]})[:, 0]
        for ax, (r, rows) in zip(axes, panels[i:j]):
            names, values = zip(*rows)
            colors = ["tab:red" if n.startswith("csoftmax") else "tab:gray" if n == r.baseline
                      else "tab:blue" for n in names]
            ax.barh(range(len(rows)), values, color=colors)
            ax.set_xscale("log")
            ax.set_xlim(lo / 2, hi * 4)
            ax.axvline(1.0, color="black", linewidth=0.6)
            ax.set_yticks(range(len(rows)), names, fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title(f"{r.name}  (time / {r.baseline})", fontsize=8, loc="left")
            for k, v in enumerate(values):
                ax.text(v * 1.05, k, fmt_ratio(v), va="center", fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _balanced_split(heights, n_cols):
    """``n_cols`` consecutive ``(start, stop)`` runs of panels of about equal height."""
    bounds, total, acc = [0], sum(heights), 0.0
    for k, h in enumerate(heights):
        acc += h
        if len(bounds) < n_cols and acc >= total * len(bounds) / n_cols and k + 1 < len(heights):
            bounds.append(k + 1)
    bounds.append(len(heights))
    return list(zip(bounds, bounds[1:]))
