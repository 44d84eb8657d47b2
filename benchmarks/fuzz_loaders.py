"""Fuzz rig's loaders with freshly mutated copies of genuine files and print one row per family.

Runs ``tests/fuzz/harness.py``: each family (NVIDIA ``.pkl``, rig ``.safetensors``, rosinality
``.pt``, FLAME ``generic_model.pkl`` and its two embeddings, face-model ``.npz``, x264 ``.mp4``,
rig-parameter ``.npz``, W+ latent ``.npy``, SH lighting ``.npy``, face ``.npz``, ``track.npz`` (each
also with its members mutated and re-zipped), PNG / JPEG photos, the RigNet and inverter
``.safetensors`` (each also with only its JSON header mutated))
gets ``--cases-per-family`` mutations of its seed file, loaded in one long-lived forked worker per
family under a watchdog (``--timeout-s`` CPU seconds per case, ``--wall-timeout-s`` wall seconds,
``--rss-limit-mb`` resident). Families run in the order ``--families`` names them. Columns:

    cases     mutated inputs tried
    refused   the loader raised a rig error (CheckpointError / InputError / UnsafeFileError)
    loaded    the loader returned (the mutation hit padding, a weight's low bits, ...)
    crashes   the worker died of a signal inside a case (a segfault is memory corruption)
    hangs     a case used more than --timeout-s of CPU (or --wall-timeout-s of wall) time
    blow-ups  the worker's resident memory passed --rss-limit-mb
    uncaught  the loader raised something that is not a rig error

Any case can be replayed alone: case ``i`` of family ``f`` mutates the seed with
``random.Random(f"{seed}:{f}:{i}")``; failing inputs are written to ``--keep-failures``.
Exit status 1 when any case crashed, hung, blew up or escaped.

    nice -n 19 python benchmarks/fuzz_loaders.py --cases-per-family 1300 --seed 22
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz.harness import SHARED_FIXTURES, FamilyResult, build_families, run_family  # noqa: E402

CHUNK = 250
COLUMNS = ("cases", "refused", "loaded", "crashes", "hangs", "blow-ups", "uncaught", "wall s", "CPU s")


def _row(result) -> list[str]:
    return [str(v) for v in (result.tried, result.rig_errors, result.loaded, result.crashes, result.hangs,
                             result.blowups, result.uncaught)] + [f"{result.seconds:.0f}", f"{result.cpu_seconds:.0f}"]


def _accumulate(total: FamilyResult, part: FamilyResult) -> None:
    for name in ("tried", "loaded", "rig_errors", "uncaught", "hangs", "blowups", "crashes", "seconds", "cpu_seconds"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.examples += part.examples


def _print_table(rows: list[tuple[str, list[str]]]) -> None:
    print("| family | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, cells in rows:
        print(f"| {name} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases-per-family", type=int, default=300)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--families", nargs="*", default=None, help="names to run (default: every family found)")
    ap.add_argument("--start", type=int, default=0, help="first case index (to continue an earlier run)")
    ap.add_argument("--timeout-s", type=float, default=10.0, help="CPU seconds per case")
    ap.add_argument("--wall-timeout-s", type=float, default=300.0, help="wall seconds per case")
    ap.add_argument("--rss-limit-mb", type=int, default=2048)
    ap.add_argument("--fixtures", type=Path, default=SHARED_FIXTURES)
    ap.add_argument("--workdir", type=Path, default=None, help="seed files and cases (default: a temp folder)")
    ap.add_argument("--keep-failures", type=Path, default=None, help="write every failing input here")
    args = ap.parse_args(argv)
    if args.cases_per_family <= 0:
        ap.error("--cases-per-family must be positive")

    with tempfile.TemporaryDirectory(prefix="rig-fuzz-") as tmp:
        workdir = args.workdir or Path(tmp)
        families = build_families(workdir, args.fixtures)
        known = [f.name for f in families]
        if args.families:
            missing = sorted(set(args.families) - set(known))
            if missing:
                ap.error(f"unknown or unavailable families {missing}; found {known}")
            by_name = {f.name: f for f in families}
            families = [by_name[n] for n in dict.fromkeys(args.families)]
        print(f"fuzzing {len(families)} families x {args.cases_per_family} cases, seed {args.seed}, "
              f"timeout {args.timeout_s:g} CPU s / {args.wall_timeout_s:g} wall s, "
              f"RSS limit {args.rss_limit_mb} MB", flush=True)
        t0 = time.monotonic()
        rows, failures, examples = [], 0, []
        total = FamilyResult("total")
        for fam in families:
            res = FamilyResult(fam.name)
            # In chunks, so that a long run reports as it goes (and a stopped one says how far it got).
            for first in range(args.start, args.start + args.cases_per_family, CHUNK):
                n = min(CHUNK, args.start + args.cases_per_family - first)
                part = run_family(fam, n, args.seed, workdir, timeout_s=args.timeout_s,
                                  rss_limit_mb=args.rss_limit_mb, start=first, keep_failures=args.keep_failures,
                                  wall_timeout_s=args.wall_timeout_s)
                _accumulate(res, part)
                print(f"    {fam.name}: {res.tried} cases, {res.rig_errors} refused, {res.loaded} loaded, "
                      f"{res.failures} failures, {res.seconds:.0f} s wall, {res.cpu_seconds:.0f} s CPU", flush=True)
            rows.append((fam.name, _row(res)))
            failures += res.failures
            examples += [f"{fam.name} {e}" for e in res.examples]
            _accumulate(total, res)
            print(f"  {fam.name}: {res.tried} cases in {res.seconds:.0f} s, {res.failures} failures", flush=True)
            for e in res.examples:
                print(f"    {e}", flush=True)
        elapsed = time.monotonic() - t0
    total.seconds = elapsed
    rows.append(("**total**", _row(total)))
    _print_table(rows)
    print(f"wall time {elapsed:.0f} s ({elapsed / 60:.1f} min), workers' CPU time {total.cpu_seconds:.0f} s")
    for e in examples:
        print("  " + e)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
