"""The one error hierarchy of rig.

Library code raises these; the CLI turns any ``RigError`` into a single line on stderr and the exit
code of its class (a traceback only with ``--debug``). The exit codes, as the README documents them:

    0  success
    1  bad input: a value, or a file that is malformed, hostile or claims more memory than it may
    2  usage: the command line itself (click: an unknown flag, a missing option, a choice not offered)
    3  environment: valid work the machine refused (unwritable output, disk full, out of memory)
    4  a batch finished with some of its jobs failed
    anything else (70: an internal error, 130: interrupted) is a bug or the user's Ctrl-C.
"""

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
EXIT_BATCH = 4
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE
EXIT_INTERRUPTED = 130


class RigError(Exception):
    """Base class of every error rig raises on purpose; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_INPUT


class InputError(RigError):
    """A user-supplied file or value is missing, malformed or out of range."""


class CheckpointError(InputError):
    """A model / network file cannot be read or does not describe a supported network."""


class UnsafeFileError(CheckpointError):
    """A file asks to run code or import something outside rig's allow-list; it was refused."""


class ShapeError(RigError, ValueError):
    """A tensor handed across a module boundary has the wrong shape or dtype."""


class RigEnvironmentError(RigError):
    """Valid work the machine refused: an output that cannot be written (permission, read-only
    file system, a path under a file, disk full) or memory that ran out. The message names the
    user's path, never a temporary file."""

    exit_code = EXIT_ENVIRONMENT


class BatchError(RigError):
    """A batch ran to its end but some of its jobs failed (the others' outputs are complete)."""

    exit_code = EXIT_BATCH
