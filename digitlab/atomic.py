"""Writing files so that a reader never sees half of one."""

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, payload: bytes) -> None:
    """Write beside ``path`` and rename over it: readers see the old file or the whole new one."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())

    save_atomically(path, write)


def write_json_atomically(path: Path, data: object) -> None:
    """Write ``data`` as indented JSON with a final newline, atomically (:func:`write_atomically`)."""
    write_atomically(path, (json.dumps(data, indent=1) + "\n").encode())


def save_atomically(path: Path, save: Callable[[Path], object]) -> None:
    """Let ``save`` write a file beside ``path``, then rename it over ``path``; if ``save`` fails, remove it.

    ``save`` gets the temporary file's path, which ends in ``path``'s suffix because writers that take
    a path (a Keras model, ``numpy.savez``) insist on it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".part{path.suffix}")
    os.close(descriptor)
    temporary = Path(name)
    try:
        # mkstemp creates the file readable by its owner only; these files are meant to be shared.
        os.chmod(temporary, 0o644)
        save(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
