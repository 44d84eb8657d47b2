"""``rig track``: fit the face model to the face in a video."""

from __future__ import annotations

import click

from rig import limits
from rig.cli.app import main
from rig.cli.options import checked_option


@main.command("track")
@click.argument("video", type=click.Path(exists=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Where to write track.npz (rig parameters per frame, landmarks, camera).")
@click.option("--face-model", "face_model", default="default", show_default=True,
              help="'default' (the embedded head), a FLAME generic_model.pkl, or a rig face-model .npz.")
@click.option("--overlay", "overlay", type=click.Path(dir_okay=False), default=None,
              help="Also write an MP4 with detected (green) / fitted (red) landmarks and the mesh outline.")
@checked_option("--start", rng=limits.TIME_S, default=0.0, show_default=True, help="First second of the clip to track.")
@checked_option("--end", rng=limits.TIME_S, default=None, help="Last second (exclusive); default: the end of the clip.")
@checked_option("--smooth", rng=limits.SMOOTH, default=1.0, show_default=True,
              help="Temporal smoothness (0 = none; larger = smoother and laggier).")
@checked_option("--focal", rng=limits.FOCAL_PX, default=None, help="Focal length in pixels (default: estimated).")
@click.option("--camera", type=click.Choice(["perspective", "weak_perspective"]), default="perspective",
              show_default=True, help="Camera model of the fit.")
@checked_option("--fps", "sequence_fps", rng=limits.FPS, default=25.0, show_default=True,
              help="Frame rate of an image-folder input (video files carry their own).")
def track_cmd(video, output, face_model, overlay, start, end, smooth, focal, camera, sequence_fps):
    """Track the face in VIDEO (a video file or an image folder) and fit the face model to it."""
    import numpy as np

    from rig.face_model.loading import load_face_model
    from rig.io.video import probe_video, read_video_info
    from rig.track.config import TrackConfig
    from rig.track.pipeline import save_track, track_video, write_overlay

    from pathlib import Path

    from rig.errors import InputError

    # Every option is checked before any work, so a bad one never leaves track.npz without its overlay.
    if end is not None and end <= start:
        raise InputError(f"--end {end:g}: must be after --start {start:g}")
    if overlay is not None and Path(overlay).suffix.lower() not in (".mp4", ".mkv", ".webm", ".mov"):
        raise InputError(f"--overlay {overlay}: must end in .mp4 (or .mkv, .webm, .mov)")
    # A crash inside FFmpeg on crafted bytes must end a child process, not this command.
    probe_video(video, sequence_fps=sequence_fps)
    info = read_video_info(video, sequence_fps=sequence_fps)
    first = int(round(start * info.fps))
    last = None if end is None else int(round(end * info.fps))
    config = TrackConfig(camera=camera, focal_px=focal, smooth=smooth)
    model = load_face_model(face_model)
    result = track_video(video, model, config, start=first, end=last, face_model_name=str(face_model),
                         sequence_fps=sequence_fps)
    save_track(output, result)
    lt, fit = result.landmarks, result.fit
    n, found = result.n_frames, int(lt.detected.sum())
    total_s = result.timings["landmarks"] + result.timings["fit"]
    click.echo(f"tracked {n} frames of {video} ({info.width}x{info.height} @ {info.fps:.2f} fps) in {total_s:.1f} s "
               f"({n / max(total_s, 1e-9):.1f} fps): face found in {found}/{n} frames, "
               f"landmark fit RMS {np.nanmean(fit.residual_px):.2f} px"
               + (f", focal {fit.focal_px:.0f} px" if fit.focal_px else ""))
    if found < n:
        missing = np.flatnonzero(~lt.detected) + first
        shown = ", ".join(str(i) for i in missing[:20]) + (" ..." if len(missing) > 20 else "")
        click.echo(f"warning: no face in {n - found} frame(s), interpolated and flagged (detected=False): {shown}")
    from rig.track.pipeline import outlier_frames

    suspect = np.flatnonzero(outlier_frames(fit.residual_px, lt.landmarks)) + first
    if len(suspect):
        click.echo(f"note: {len(suspect)} frame(s) fit much worse than the rest (fit_outlier): "
                   + ", ".join(str(i) for i in suspect[:20]) + (" ..." if len(suspect) > 20 else ""))
    if result.truncated:
        click.echo(f"warning: {video} stops decoding before its declared end (damaged or cut file); "
                   f"tracked the {n} frames that decode")
    click.echo(f"wrote {output}")
    if overlay:
        write_overlay(overlay, result, model)
        click.echo(f"wrote {overlay}")
