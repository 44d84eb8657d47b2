"""A training run's loss log (``log.jsonl``: one JSON record per line) and its plot (``losses.png``).

Records carry ``phase`` and ``step`` plus one number per loss term; the plot has one panel per phase,
log scale, a line per term. Used by ``rig train rignet`` and ``rig train inverter``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from rig.errors import InputError
from rig.io.atomic import atomic_path

LOG_EVERY = 25  # steps between log lines (and the last step of a phase)


def append_log_line(path: Path, record: dict) -> None:
    """Append one JSON record to a ``log.jsonl``."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def end_step(run: Path, phase: str, state, n_steps: int, record: dict[str, float], bar, t_start: float) -> None:
    """The bookkeeping after one optimiser step of a training run: refuse non-finite losses (the run
    diverged), count the step in ``state.step``, and every ``LOG_EVERY`` steps (and at a phase's last)
    show ``record`` on the progress ``bar`` and append it to ``run/log.jsonl`` with the elapsed seconds
    since ``t_start`` (``time.perf_counter`` clock)."""
    if not all(math.isfinite(v) for v in record.values()):
        raise InputError(f"{run}: training diverged at {phase} step {state.step} ({record})")
    state.step += 1
    bar.update(1)
    if state.step % LOG_EVERY == 0 or state.step == n_steps:
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items()})
        append_log_line(run / "log.jsonl", {"phase": phase, "step": state.step,
                                            "time": round(time.perf_counter() - t_start, 1), **record})


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
