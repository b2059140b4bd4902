"""Where digitlab reads and writes files, how many runs it trains at once, and how users override them.

Each location, and the limit on training runs, has one environment variable so
that the command line, the dashboard and CI can be pointed elsewhere or sized
to their machine without code changes.
"""

import os
from pathlib import Path

import platformdirs

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# An installed wheel carries the project's models/ as this subpackage (see pyproject.toml's package-dir).
PACKAGED_MODELS_DIR = Path(__file__).resolve().parent / "shipped_models"
DATA_DIR_VARIABLE = "DIGITLAB_DATA_DIR"
MODELS_DIR_VARIABLE = "DIGITLAB_MODELS_DIR"
DATABASE_VARIABLE = "DIGITLAB_DB"
MNIST_MIRRORS_VARIABLE = "DIGITLAB_MNIST_MIRRORS"
MAX_TRAINING_RUNS_VARIABLE = "DIGITLAB_MAX_TRAINING_RUNS"
# A Ray cluster to train on instead of this machine (``ray://head:10001``, ``head:6379`` or ``auto``).
RAY_ADDRESS_VARIABLE = "DIGITLAB_RAY_ADDRESS"
RAY_CPUS_VARIABLE = "DIGITLAB_RAY_CPUS_PER_RUN"
# Public mirrors of the original MNIST files, tried in order.
DEFAULT_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# Beside the database: each training run's folder, and the promoted models.
RUNS_FOLDER_NAME = "runs"
ACTIVE_FOLDER_NAME = "active"
# The default number of training runs at once is what the machine can hold without each run crawling:
# TensorFlow spreads one run over about this many cores...
CORES_PER_TRAINING_RUN = 2
# ...and a worker (TensorFlow, MNIST and a model in training) takes up to about this much memory,
TRAINING_RUN_MEMORY_BYTES = 3 * 2**29
# after this much is left for the system and the dashboard itself.
RESERVED_MEMORY_BYTES = 2**30
# With a Ray cluster, runs wait for its resources in the cluster's own queue, and this server only relays each
# run's progress; the limit then only bounds how many runs one server relays at once.
RAY_DEFAULT_MAX_TRAINING_RUNS = 32
# The CPUs a run asks the cluster for: TensorFlow spreads one run over about this many.
RAY_DEFAULT_CPUS_PER_RUN = CORES_PER_TRAINING_RUN


def shipped_models_dir() -> Path:
    """The shipped models: the copy installed with the package, else ``models/`` in a source checkout.

    Outside a checkout (no ``pyproject.toml`` beside the package) the packaged folder is named even when it
    is missing, so that the error says where the models were looked for.
    """
    if PACKAGED_MODELS_DIR.is_dir() or not (PROJECT_ROOT / "pyproject.toml").is_file():
        return PACKAGED_MODELS_DIR
    return PROJECT_ROOT / "models"


DEFAULT_MODELS_DIR = shipped_models_dir()


def data_dir() -> Path:
    """The MNIST folder: ``$DIGITLAB_DATA_DIR``, else a per-user cache folder."""
    configured = os.environ.get(DATA_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("digitlab")) / "mnist"


def mnist_mirrors() -> tuple[str, ...]:
    """Where MNIST is downloaded from: ``$DIGITLAB_MNIST_MIRRORS`` (space-separated base URLs), else the public ones."""
    configured = os.environ.get(MNIST_MIRRORS_VARIABLE, "").split()
    return tuple(configured) if configured else DEFAULT_MNIST_MIRRORS


def configured_models_dir() -> Path | None:
    """``$DIGITLAB_MODELS_DIR`` when it is set: it wins over promoted models as well as the shipped ones."""
    configured = os.environ.get(MODELS_DIR_VARIABLE)
    return Path(configured).expanduser() if configured else None


def models_dir() -> Path:
    """The folder of trained models: ``$DIGITLAB_MODELS_DIR``, else the shipped ones (:func:`shipped_models_dir`)."""
    return configured_models_dir() or DEFAULT_MODELS_DIR


def user_data_dir() -> Path:
    """The per-user folder for what users make in the lab: saved drawings, training runs, promoted models."""
    return Path(platformdirs.user_data_dir("digitlab"))


def runs_dir(database: Path | None = None) -> Path:
    """Where each training run's artefacts are written: ``runs/`` beside the database."""
    return (database if database is not None else database_path()).parent / RUNS_FOLDER_NAME


def active_dir(database: Path | None = None) -> Path:
    """The promoted models: ``active/`` beside the database."""
    return (database if database is not None else database_path()).parent / ACTIVE_FOLDER_NAME


def database_path() -> Path:
    """The lab's SQLite database: ``$DIGITLAB_DB``, else ``digitlab.sqlite3`` in the user data folder."""
    configured = os.environ.get(DATABASE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return user_data_dir() / "digitlab.sqlite3"


def max_training_runs() -> int:
    """How many training runs may train at once; the others wait in line.

    ``$DIGITLAB_MAX_TRAINING_RUNS`` when it is set, else :func:`default_max_training_runs`, or with a Ray
    cluster ``RAY_DEFAULT_MAX_TRAINING_RUNS`` (the cluster's resources are the real limit). A value that is not
    a whole number of at least 1 is a ValueError whose message names the variable.
    """
    default = RAY_DEFAULT_MAX_TRAINING_RUNS if ray_address() else default_max_training_runs()
    return _whole_number(MAX_TRAINING_RUNS_VARIABLE, default)


def ray_address() -> str | None:
    """The Ray cluster that trains the runs (``$DIGITLAB_RAY_ADDRESS``); None to train on this machine."""
    return os.environ.get(RAY_ADDRESS_VARIABLE, "").strip() or None


def ray_cpus_per_run() -> int:
    """The CPUs each run asks the Ray cluster for (``$DIGITLAB_RAY_CPUS_PER_RUN``)."""
    return _whole_number(RAY_CPUS_VARIABLE, RAY_DEFAULT_CPUS_PER_RUN)


def _whole_number(variable: str, default: int) -> int:
    """``$variable`` as a whole number of at least 1, ``default`` when unset; a ValueError naming it otherwise."""
    configured = os.environ.get(variable, "").strip()
    if not configured:
        return default
    try:
        value = int(configured)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{variable} must be a whole number of at least 1, not {configured!r}.")
    return value


def default_max_training_runs() -> int:
    """One run per ``CORES_PER_TRAINING_RUN`` cores this process may use, as many as the memory holds, at least 1.

    The memory is the machine's physical memory less ``RESERVED_MEMORY_BYTES``, at ``TRAINING_RUN_MEMORY_BYTES``
    a run; where the system does not tell it, the cores alone decide.
    """
    by_cores = usable_cores() // CORES_PER_TRAINING_RUN
    memory = physical_memory_bytes()
    if memory is not None:
        by_cores = min(by_cores, (memory - RESERVED_MEMORY_BYTES) // TRAINING_RUN_MEMORY_BYTES)
    return max(1, by_cores)


def usable_cores() -> int:
    """The cores this process may run on (a container or ``taskset`` may allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def physical_memory_bytes() -> int | None:
    """The machine's memory in bytes, or None where the system does not report it (Windows)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
