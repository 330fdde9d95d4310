"""The report's pictures (matplotlib, PNG): accuracy per category, evidence IoU, steps, accuracy vs budget.

Each plot draws onto an Axes it is given, so the same drawing serves the
separate PNGs and the 2×2 overview (``report.png``, the README's picture).
``matplotlib.figure.Figure`` is used directly, never pyplot: no global state,
no display backend, safe in tests and on a headless machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcr.eval.records import TaskRecord

GOOD, BAD, ERR, OTHER = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0"


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_categories(ax: Any, summary: dict[str, Any], label: str = "") -> None:
    cats = summary["by_category"]
    if not cats:
        return _empty(ax, "no tasks")
    names = list(cats)
    acc = [cats[n]["accuracy"] for n in names]
    bars = ax.barh(names, acc, color=OTHER)
    for bar, name in zip(bars, names):
        c = cats[name]
        ax.text(min(bar.get_width() + 0.02, 0.98), bar.get_y() + bar.get_height() / 2,
                f"{c['correct']}/{c['n']}", va="center", ha="left" if bar.get_width() < 0.85 else "right", fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy")
    ax.set_title(f"Accuracy per category{label} (overall {summary['accuracy']:.0%})", fontsize=10)


def draw_evidence_iou(ax: Any, summary: dict[str, Any]) -> None:
    values = summary["evidence_iou"]["values"]
    if not values:
        return _empty(ax, "no accepted answer with a ground-truth span")
    ax.hist(values, bins=[i / 10 for i in range(11)], color=OTHER, edgecolor="white")
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU of the cited evidence spans with the truth span")
    ax.set_ylabel("accepted answers")
    ax.set_title(f"Evidence IoU (mean {summary['evidence_iou']['mean']:.2f}, n={len(values)})", fontsize=10)


def draw_steps(ax: Any, records: list[TaskRecord]) -> None:
    if not records:
        return _empty(ax, "no tasks")
    colours = [ERR if r.status == "error" else GOOD if r.correct else BAD for r in records]
    ax.bar(range(len(records)), [r.steps for r in records], color=colours, width=0.85)
    ax.set_xlabel("task (green: correct, red: wrong, grey: error)")
    ax.set_ylabel("steps")
    ax.set_xlim(-0.6, len(records) - 0.4)
    ax.set_title("Steps per task", fontsize=10)


def draw_budget(ax: Any, summary: dict[str, Any]) -> None:
    curve = summary["accuracy_at_steps"]
    if not curve:
        return _empty(ax, "no tasks")
    from matplotlib.ticker import MaxNLocator

    lines = ax.plot([k for k, _ in curve], [a for _, a in curve], marker="o", color=OTHER, label="cut after k steps")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step budget k")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("Accuracy at a budget (steps; seconds, dashed)", fontsize=10, pad=4)
    seconds = summary["accuracy_at_seconds"]
    if seconds:
        top = ax.twiny()
        lines += top.plot([t for t, _ in seconds], [a for _, a in seconds], color="#ef6c00", linestyle="--",
                          label="cut after t seconds")
        top.set_xlabel("time budget t (s)", color="#ef6c00", fontsize=9)
        top.tick_params(axis="x", colors="#ef6c00")
        top.set_ylim(0, 1)
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)


def write_plots(out: Path, records: list[TaskRecord], summary: dict[str, Any]) -> dict[str, str]:
    """Write the four plots and the overview; returns {name: file name}."""
    files = {}
    for name, draw in (
        ("accuracy_per_category", lambda ax: draw_categories(ax, summary)),
        ("evidence_iou", lambda ax: draw_evidence_iou(ax, summary)),
        ("steps_per_task", lambda ax: draw_steps(ax, records)),
        ("accuracy_vs_budget", lambda ax: draw_budget(ax, summary)),
    ):
        fig = _figure()
        draw(fig.add_subplot())
        fig.savefig(out / f"{name}.png")
        files[name] = f"{name}.png"
    fig = _figure(12.8, 8.0)
    axes = fig.subplots(2, 2)
    draw_categories(axes[0][0], summary)
    draw_evidence_iou(axes[0][1], summary)
    draw_steps(axes[1][0], records)
    draw_budget(axes[1][1], summary)
    fig.savefig(out / "report.png")
    files["overview"] = "report.png"
    return files


def write_compare_plot(path: Path, a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> None:
    """Accuracy per category, two runs side by side."""
    cats = sorted(set(a["by_category"]) | set(b["by_category"]))
    fig = _figure(8.0, max(3.0, 0.45 * len(cats) + 1.2))
    ax = fig.add_subplot()
    ys = range(len(cats))
    h = 0.4
    for offset, summary, label, colour in ((-h / 2, a, names[0], OTHER), (h / 2, b, names[1], "#ef6c00")):
        acc = [summary["by_category"].get(c, {}).get("accuracy", 0.0) for c in cats]
        ax.barh([y + offset for y in ys], acc, height=h, color=colour, label=f"{label} ({summary['accuracy']:.0%})")
    ax.set_yticks(list(ys), cats)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Accuracy per category", fontsize=10)
    fig.savefig(path)
