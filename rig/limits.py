"""The documented ranges of every number a user can hand rig, and the one check that applies them.

A ``Range`` is what the rig or the network allows for one kind of number (a head angle, an image
side, a truncation psi, a seed, a count of steps). The CLI's checked-number options
(``rig.cli.options``) and the library's own checks read the same ``Range`` objects, so a bound lives
in one place. A value that is not a number, is NaN or infinite, or lies outside its range is an
``InputError`` whose one line names the flag (or file) and the value.

This module imports nothing heavy (no numpy, no torch): ``rig --help`` builds its options from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rig.errors import InputError


@dataclass(frozen=True)
class Range:
    """A closed interval ``lo..hi`` (``lo_open``: ``lo`` itself excluded) of floats or integers.

    unit: shown after the interval in messages and help ("degrees", "pixels").
    power_of_two: integers only; the value must also be a power of two.
    why: a short reason shown with a refusal, e.g. what goes wrong beyond the bound.
    """

    lo: float
    hi: float
    integer: bool = False
    lo_open: bool = False
    power_of_two: bool = False
    unit: str = ""
    why: str = ""

    def describe(self) -> str:
        """``"-180..180 degrees"``, ``"> 0 .. 1000 frames per second"``, ``"a power of two in 8..4096 pixels"``."""
        lo = f"> {_fmt(self.lo)} .. " if self.lo_open else f"{_fmt(self.lo)}.."
        text = f"{lo}{_fmt(self.hi)}" + (f" {self.unit}" if self.unit else "")
        return f"a power of two in {text}" if self.power_of_two else text

    def check(self, value: object, name: str) -> float | int:
        """``value`` (a number or the text the user typed) as float / int, or an ``InputError`` naming ``name``.

        name: the flag or file-and-key the value came from, e.g. ``"--yaw"`` or ``"p.json: jaw_pose"``.
        """
        shown = value if isinstance(value, str) else repr(value)
        choose = f"choose {self.describe()}" + (f" ({self.why})" if self.why else "")
        number = _parse(value, self.integer)
        if number is None:
            kind = "an integer" if self.integer else "a number"
            raise InputError(f"{name} {shown}: not {kind}; {choose}")
        if isinstance(number, float) and not math.isfinite(number):
            raise InputError(f"{name} {shown}: not a finite number; {choose}")
        below = number <= self.lo if self.lo_open else number < self.lo
        if below or number > self.hi:
            raise InputError(f"{name} {shown}: outside the range; {choose}")
        if self.power_of_two and number & (number - 1):
            raise InputError(f"{name} {shown}: not a power of two; {choose}")
        return number


def _fmt(x: float) -> str:
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}".replace(",", "_") if abs(x) >= 100_000 else str(int(x))
    return f"{x:g}"


def _parse(value: object, integer: bool) -> float | int | None:
    """The number ``value`` spells (bool is not a number), or None."""
    if isinstance(value, bool):
        return None
    if integer:
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            f = _parse(value, False)  # "1e3" and 4.0 are integers too; 2.5 and nan are not
            return int(f) if f is not None and math.isfinite(f) and f.is_integer() else None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


# ---------------------------------------------------------------------- the rig

#: Head yaw / pitch / roll and jaw opening at the CLI. Every head rotation is reachable within a half
#: turn each way; larger numbers are typing slips, and the jaw's joint has no meaning past it.
ANGLE_DEG = Range(-180.0, 180.0, unit="degrees")
#: Any rig parameter (shape / expression coefficients, axis-angle radians, metres) the face model takes.
#: Beyond this a value is a corrupted file or a diverged optimisation (``FaceModel.forward`` refuses it).
PARAM_ABS = 1e4
#: Vertical field of view of a render camera.
FOV_DEG = Range(1.0, 170.0, unit="degrees")
#: Side of a rendered image (``RasterSettings``: 8192 x 8192 already needs ~2 GB of barycentrics).
IMAGE_SIDE = Range(1, 8192, integer=True, unit="pixels")
#: Side of a world dataset's images (``rig world sample --size``; its renders are 4x as wide).
WORLD_SIDE = Range(8, 4096, integer=True, power_of_two=True, unit="pixels")
#: Side of an image rig writes at the CLI (renders, crops, display sizes).
OUTPUT_SIDE = Range(8, 8192, integer=True, unit="pixels")
#: A spherical-harmonics lighting coefficient (the presets stay below 3; far larger is no light).
SH_ABS = 1e3



def available_memory_bytes() -> int:
    """Memory a command may claim now: the kernel's ``MemAvailable`` (Linux), else the physical memory.

    The budget every size check that allocates in proportion to a user's number is measured against.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 34


# ---------------------------------------------------------------------- the networks

#: Truncation psi: 0 = the average face, 1 = none, above 1 exaggerates. NVIDIA's tools take any
#: number; past +-2 the latents leave everything the mapping network produces.
TRUNCATION_PSI = Range(-2.0, 2.0, why="0 = the average face, 1 = no truncation")
#: A W / W+ latent value. Trained mapping networks stay within +-100; far beyond, synthesis overflows.
LATENT_ABS = 1e4
#: A seed (numpy's RandomState takes 32 bits).
SEED = Range(0, 2**32 - 1, integer=True)
#: Images per forward pass / training step.
BATCH = Range(1, 4096, integer=True, unit="images")
#: A class index of a conditional network (its own class count is checked once it is loaded).
CLASS_INDEX = Range(0, 1_000_000, integer=True)
#: Which face of several in a photo (0 = the largest).
FACE_INDEX = Range(0, 1000, integer=True)
#: How many leading W+ layers a truncation cutoff keeps.
LAYER_COUNT = Range(0, 1024, integer=True, unit="layers")

# ---------------------------------------------------------------------- runs

#: Optimisation / training steps (0: skip that phase).
STEPS = Range(0, 100_000_000, integer=True, unit="steps")
#: How many images / latents / faces a command makes or measures.
COUNT = Range(1, 100_000_000, integer=True)
#: How many of something, where none is allowed.
COUNT_OR_NONE = Range(0, 100_000_000, integer=True)
#: A loss weight or other non-negative factor.
WEIGHT = Range(0.0, 1e6)
#: A probability or share.
PROBABILITY = Range(0.0, 1.0)
#: An Adam learning rate.
LEARNING_RATE = Range(0.0, 1.0, lo_open=True)
#: Thousands of images of a training schedule.
KIMG = Range(0.0, 1e6, lo_open=True, unit="kimg")
#: Thousands of images, where none is allowed.
KIMG_OR_NONE = Range(0.0, 1e6, unit="kimg")
#: Minutes of a training schedule.
MINUTES = Range(0.0, 1e6, lo_open=True, unit="minutes")
#: torch CPU threads.
THREADS = Range(1, 1024, integer=True, unit="threads")
#: Channels / hidden units of a network layer, where 0 switches that layer off.
CHANNELS_OR_NONE = Range(0, 65536, integer=True, unit="channels")

# ---------------------------------------------------------------------- video and tracking

#: Frame rate of a video written or an image folder read.
FPS = Range(0.0, 1000.0, lo_open=True, unit="frames per second")
#: A time in a clip.
TIME_S = Range(0.0, 1e7, unit="seconds")
#: Temporal smoothness of a track fit (0 = none).
SMOOTH = Range(0.0, 1e6)
#: A focal length in pixels.
FOCAL_PX = Range(0.0, 1e6, lo_open=True, unit="pixels")
