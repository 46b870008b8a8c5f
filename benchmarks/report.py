"""Statistics, machine information, and the three outputs: a markdown table, a JSON file, a plot."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


# --- statistics --------------------------------------------------------------------------------


def summarize(times) -> dict:
    """Median, quartiles, min and count of a list of step times (seconds)."""
    t = np.asarray(times, dtype=np.float64)
    q1, median, q3 = np.percentile(t, [25, 50, 75])
    return dict(median=float(median), q1=float(q1), q3=float(q3), min=float(t.min()), n=int(t.size))


def fmt_time(seconds: float) -> str:
    """A duration with three significant figures in a readable unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            value = seconds / scale
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f} {unit}"
    raise AssertionError("unreachable")


def fmt_cell(stats: dict) -> str:
    """Median, and the interquartile range as a percentage of it."""
    iqr = 100 * (stats["q3"] - stats["q1"]) / stats["median"]
    return f"{fmt_time(stats['median'])} (IQR {iqr:.0f}%)"


# --- the machine -------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _numpy_blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:  # older NumPy: no dict mode
        return "unknown"


def machine_info() -> dict:
    """CPU model, cores, memory, OS, Python and NumPy with its BLAS."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return dict(
        cpu=_cpu_model(),
        cores=os.cpu_count(),
        usable_cores=usable,
        memory_gib=_memory_gib(),
        platform=platform.platform(),
        python=platform.python_version(),
        numpy=np.__version__,
        numpy_blas=_numpy_blas(),
    )


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


# --- writing -----------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]], align_right_from: int = 1) -> str:
    """A GitHub markdown table."""
    marks = ["---" if i < align_right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def batch_tables(rows: list[dict], reference: str, also: str | None = None) -> list[str]:
    """Markdown tables of rows over batch sizes: ratios to the reference, then absolute medians.

    With ``also`` (a label among the rows), a third table gives every
    row's time relative to that row's, batch by batch.
    """
    batches = sorted({r["batch"] for r in rows})
    by_label = {}
    for r in rows:
        by_label.setdefault(r["label"], {})[r["batch"]] = r
    header = ["implementation"] + [f"batch {b}" for b in batches]

    def ratio(r):
        return "-" if r is None or r.get("ratio") is None else f"{r['ratio']:.2f}"

    ratios = [[label] + [ratio(cells.get(b)) for b in batches] for label, cells in by_label.items()]
    medians = [[label] + [fmt_cell(cells[b]) if b in cells else "-" for b in batches]
               for label, cells in by_label.items()]
    out = [
        f"Time relative to {reference} (lower is faster):", "", table(header, ratios), "",
        "Median time per step (interquartile range as a share of the median):", "", table(header, medians),
    ]
    if also in by_label:
        base = by_label[also]
        against = [[label] + [relative(cells.get(b), base.get(b)) for b in batches]
                   for label, cells in by_label.items()]
        out += ["", f"Time relative to {also}:", "", table(header, against)]
    return out


def relative(row: dict | None, base: dict | None) -> str:
    """row's median over base's, two decimals ("-" when either is missing)."""
    return "-" if row is None or base is None else f"{row['median'] / base['median']:.2f}"


def single_table(rows: list[dict], also: str | None = None, also_name: str = "PyTorch") -> str:
    """One markdown table of rows of one size: median, IQR, ratio to the reference, and to ``also`` if present.

    ``also`` is a label among the rows; its column is headed "vs ``also_name``".
    """
    base = next((r for r in rows if r["label"] == also), None)
    header = ["implementation", "median", "IQR", "relative"] + ([f"vs {also_name}"] if base else [])
    cells = []
    for r in rows:
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        cells.append([r["label"], fmt_time(r["median"]), fmt_time(r["q3"] - r["q1"]), ratio]
                     + ([relative(r, base)] if base else []))
    return table(header, cells)


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_jsonable) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def plot(path: Path, series: dict, title: str, reference: str | None = None, more=()) -> str | None:
    """Time per step against batch size, log-log, one line per implementation; and the ratios.

    ``series`` maps a label to ``[(batch, stats), ...]``; ``more`` holds
    further ``(series, title, reference)`` groups, each drawn as another row
    of the two panels. Returns None when the plot was written, else the
    reason it was not (matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"no plot: matplotlib is not installed ({exc}): pip install matplotlib"
    groups = [(series, title, reference), *more]
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 4.8 * len(groups)), squeeze=False)
    for (ax, ax_ratio), group in zip(axes, groups):
        _panels(ax, ax_ratio, *group)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return None


def _panels(ax, ax_ratio, series, title, reference):
    ref = dict(series.get(reference, [])) if reference else {}
    for label, points in series.items():
        if not points:
            continue
        batches = [b for b, _ in points]
        med = np.array([s["median"] for _, s in points])
        lo = med - np.array([s["q1"] for _, s in points])
        hi = np.array([s["q3"] for _, s in points]) - med
        style = "--" if "floor" in label else "-"
        line = ax.errorbar(batches, med * 1e3, yerr=[lo * 1e3, hi * 1e3], marker="o", linestyle=style,
                           capsize=3, label=label)
        if ref:
            common = [(b, s) for b, s in points if b in ref]
            ax_ratio.plot([b for b, _ in common], [s["median"] / ref[b]["median"] for b, s in common],
                          marker="o", linestyle=style, color=line[0].get_color(), label=label)
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="median time per step (ms)", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if ref:
        ax_ratio.set(xscale="log", xlabel="batch size", ylabel=f"time / {reference}",
                     title=f"relative to {reference} (lower is faster)")
        ax_ratio.axhline(1.0, color="grey", linewidth=0.8)
        ax_ratio.grid(True, which="both", alpha=0.3)
    else:
        ax_ratio.set_visible(False)
