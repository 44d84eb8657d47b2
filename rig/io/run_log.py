"""A training run's loss log (``log.jsonl``: one JSON record per line) and its plot (``losses.png``).

Records carry ``phase`` and ``step`` plus one number per loss term; the plot has one panel per phase,
log scale, a line per term. Used by ``rig train rignet`` and ``rig train inverter``.
"""

from __future__ import annotations

import json
from pathlib import Path

from rig.io.atomic import atomic_path


def append_log_line(path: Path, record: dict) -> None:
    """Append one JSON record to a ``log.jsonl``."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def plot_losses(run: Path, phases: tuple[str, ...]) -> None:
    """``run/losses.png`` from ``run/log.jsonl``, a panel per phase (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    log = run / "log.jsonl"
    rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.is_file() else []
    if not rows:
        return
    fig, axes = plt.subplots(1, len(phases), figsize=(5 * len(phases), 3.2), squeeze=False)
    for ax, phase in zip(axes[0], phases):
        pr = [r for r in rows if r["phase"] == phase]
        for key in sorted({k for r in pr for k in r} - {"phase", "step", "time"}):
            xs = [r["step"] for r in pr if key in r]
            ax.plot(xs, [r[key] for r in pr if key in r], label=key)
        ax.set_title(phase)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        if pr:
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(run / "losses.png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
