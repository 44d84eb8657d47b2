"""Benchmark the driving-video tracker at 640x480: detection, landmarks, fitting, end to end.

Clip: ``skimage.data.astronaut()`` moved along a roll swing (+-20 deg) with a slow zoom, 640x480,
written to H.264 with rig's writer (so the end-to-end run decodes a real file). Stages:

    detect      whole-frame HOG detection + 68 landmarks on every frame (``DlibLandmarkDetector.detect``)
    landmarks   the 68-point predictor alone, in each frame's known face box (``landmarks_in_box``)
    follow      the tracker's per-frame path: detection + landmarks in the rectified crop
                (``FaceFollower.step``), i.e. what ``rig track`` runs
    fit         ``fit_landmarks`` on the follower's landmarks (default head, perspective, focal estimated)
    end to end  ``track_video`` on the MP4: decode + follow + fit (no overlay)

Reported: frames per second of each stage, the best of ``--repeats`` runs (the median too: the
machine's cores are shared with other jobs, so the best is the cleanest estimate of the code's cost).

    python benchmarks/track.py --frames 120 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(best seconds, median seconds, last result)."""
    ts, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return min(ts), statistics.median(ts), out


def make_clip(n_frames: int):
    from rig.track.synthetic import ASTRONAUT_FACE_CENTRE, SimilarityTrajectory, astronaut_photo, render_clip

    t = np.arange(n_frames)
    roll = math.radians(20.0) * np.sin(2 * np.pi * t / 60.0)
    scale = 1.4 + 0.2 * np.sin(2 * np.pi * t / 90.0)
    shift = np.stack([30 * np.sin(2 * np.pi * t / 75.0), 10 * np.sin(2 * np.pi * t / 50.0)], 1)
    traj = SimilarityTrajectory(roll, scale, shift, ASTRONAUT_FACE_CENTRE, 640, 480)
    return render_clip(astronaut_photo(), traj)


def run(n_frames: int, repeats: int, threads: int | None) -> dict:
    import torch

    from rig.face_model.loading import load_face_model
    from rig.io.video import write_video
    from rig.track.config import TrackConfig
    from rig.track.fit import fit_landmarks
    from rig.track.landmarks import DlibLandmarkDetector
    from rig.track.pipeline import track_video
    from rig.track.sequence import FaceFollower, LandmarkTrack

    if threads:
        torch.set_num_threads(threads)
    frames = make_clip(n_frames)
    detector = DlibLandmarkDetector()
    model = load_face_model("default", dtype=torch.float64)
    config = TrackConfig()
    results = {}

    def detect_all():
        return [detector.detect(f) for f in frames]

    best, med, found = timed(detect_all, repeats)
    results["detect"] = {"fps": n_frames / best, "fps_median": n_frames / med,
                         "found": sum(bool(d) for d in found)}
    boxes = [d[0].box for d in found if d]
    with_box = [f for f, d in zip(frames, found) if d]

    def landmarks_only():
        return [detector.landmarks_in_box(f, b) for f, b in zip(with_box, boxes)]

    best, med, _ = timed(landmarks_only, repeats)
    results["landmarks"] = {"fps": len(boxes) / best, "fps_median": len(boxes) / med}

    def follow_all():
        follower = FaceFollower(detector, config.follow)
        return LandmarkTrack.stack([follower.step(f) for f in frames])

    best, med, track = timed(follow_all, repeats)
    results["follow"] = {"fps": n_frames / best, "fps_median": n_frames / med, "found": int(track.detected.sum())}

    def fit():
        return fit_landmarks(model, track.landmarks, track.detected, 640, 480, config)

    best, med, res = timed(fit, repeats)
    results["fit"] = {"fps": n_frames / best, "fps_median": n_frames / med,
                      "rms_px": float(np.nanmean(res.residual_px))}

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        write_video(video, frames, fps=25)
        best, med, out = timed(lambda: track_video(video, model, config, detector=detector, progress=False), repeats)
    results["end_to_end"] = {"fps": n_frames / best, "fps_median": n_frames / med,
                             "found": int(out.landmarks.detected.sum())}
    results["frames"] = n_frames
    results["size"] = "640x480"
    results["torch_threads"] = torch.get_num_threads()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads outside the fit (the fit uses 1)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args()
    results = run(args.frames, args.repeats, args.threads)
    print(f"tracker benchmark, {results['frames']} frames at {results['size']} (best / median of {args.repeats})")
    for stage in ("detect", "landmarks", "follow", "fit", "end_to_end"):
        r = results[stage]
        extra = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()
                          if k not in ("fps", "fps_median"))
        print(f"  {stage:<11} {r['fps']:7.1f} fps  (median {r['fps_median']:.1f})  {extra}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
