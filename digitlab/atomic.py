"""Writing files so that a reader never sees half of one."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, payload: bytes) -> None:
    """Write beside ``path`` and rename over it: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        # mkstemp creates the file readable by its owner only; these files are meant to be shared.
        os.chmod(temporary, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_atomically(path: Path, save: Callable[[Path], object]) -> None:
    """Let ``save`` write a file beside ``path`` and rename it over ``path``, as :func:`write_atomically` does.

    For writers that take a path rather than bytes (a Keras model, ``numpy.savez``); the temporary
    file keeps ``path``'s suffix, which such writers insist on.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.part{path.suffix}")
    try:
        save(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
