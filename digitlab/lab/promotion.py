"""Promoted models: which trained models the draw page and the command line use.

Promotion never touches the shipped ``models/`` folder. It builds a new
*generation*: a complete models folder (artefacts, manifest, test-set
probabilities) under ``active/generations/`` beside the database, made of the
models in use now with one family's model replaced by a training run's. The
generation is written under a temporary name, every artefact is checked against
its SHA-256 and the promoted model is loaded, and only then does one atomic
rename of the pointer file ``active/current.json`` switch to it. Until that
rename, and whenever anything before it fails, the models in use stay as they
were. The pointer keeps the generations it replaced, so ``rollback`` returns to
the previous one, and past the first promotion to the shipped models.
"""

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from digitlab import persistence, settings
from digitlab.atomic import write_json_atomically
from digitlab.checksums import sha256_file
from digitlab.clock import utc_file_stamp, utc_timestamp
from digitlab.data.mnist import CLASSES, IMAGE_SHAPE, TEST_IMAGES
from digitlab.errors import DigitlabError, ModelUnavailableError
from digitlab.manifest import ModelEntry
from digitlab.models.registry import REGISTRY

POINTER_NAME = "current.json"
LOCK_NAME = ".lock"
GENERATIONS_NAME = "generations"
# Files computed from the models that check themselves against the manifest when read (a stale one is
# refused with a sentence), so a new generation can carry them over.
SELF_CHECKING_FILES = ("insight.npz",)


class PromotionError(DigitlabError):
    """A model cannot be promoted or the promotion cannot be undone."""


@dataclass(frozen=True)
class PromotionPlan:
    """What promoting a model would change, for the user to see before anything changes.

    ``current_accuracy`` is None when no model of the family is in use (or it records no score);
    ``left_out`` names each model that would leave the models in use, with the reason.
    """

    family: str
    run_id: int | None
    new_accuracy: float | None
    current_accuracy: float | None
    left_out: dict[str, str]


def short_name(name: str) -> str:
    """How sentences name a model: ``MLP`` for a family, ``ensemble`` for a model built from others."""
    return name if name in REGISTRY and REGISTRY[name].members else name.upper()


def read_pointer(root: Path | None = None) -> dict[str, Any]:
    """The pointer: the generation in use (None: the shipped models) and the pointers it replaced."""
    path = (root if root is not None else settings.active_dir()) / POINTER_NAME
    if not path.exists():
        return {"generation": None, "history": []}
    try:
        pointer = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PromotionError(f"{path} cannot be read ({error}); delete it to use the shipped models.") from error
    if not isinstance(pointer, dict) or "generation" not in pointer:
        raise PromotionError(f"{path} does not name a generation; delete it to use the shipped models.")
    return pointer


def active_folder(root: Path | None = None) -> Path | None:
    """The promoted models folder in use, or None when the shipped models are."""
    root = root if root is not None else settings.active_dir()
    generation = read_pointer(root)["generation"]
    return None if generation is None else root / GENERATIONS_NAME / generation


def serving_models_dir(root: Path | None = None) -> Path:
    """The models the draw page and ``predict`` use: ``$DIGITLAB_MODELS_DIR``, else the promoted, else the shipped."""
    configured = settings.configured_models_dir()
    if configured is not None:
        return configured
    try:
        promoted = active_folder(root)
    except PromotionError:
        # A damaged pointer must not leave the lab without models; promote or roll back rewrites it.
        return settings.models_dir()
    return promoted if promoted is not None else settings.models_dir()


def promote(
    run_folder: str | os.PathLike,
    family: str,
    *,
    run_id: int | None = None,
    root: Path | None = None,
    base: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Make ``family``'s model from ``run_folder`` the one in use; return the new pointer.

    ``base`` is the models folder whose other models are kept (default: the
    promoted models in use, else the shipped ones). An ensemble whose members
    change is left out, since its weights were fitted to the old members.
    """
    root = root if root is not None else settings.active_dir()
    run_folder = Path(run_folder)
    try:
        with _pointer_lock(root):
            return _promote(run_folder, family, run_id, root, base)
    except OSError as error:
        raise PromotionError(f"The new models folder could not be built ({error}); nothing was changed.") from error


def plan_promotion(
    run_folder: str | os.PathLike,
    family: str,
    *,
    run_id: int | None = None,
    root: Path | None = None,
    base: str | os.PathLike | None = None,
) -> PromotionPlan:
    """What ``promote`` with the same arguments would change: the family's accuracy before and after, who leaves."""
    root = root if root is not None else settings.active_dir()
    base = _base_folder(root, base)
    run_entry = _run_entry(Path(run_folder), family)
    base_models = persistence.read_manifest(base).models
    current = base_models.get(family)
    return PromotionPlan(
        family=family,
        run_id=run_id,
        new_accuracy=run_entry.accuracy,
        current_accuracy=None if current is None else current.accuracy,
        left_out=_left_out(base_models, family),
    )


def _base_folder(root: Path, base: str | os.PathLike | None) -> Path:
    return Path(base) if base is not None else active_folder(root) or settings.models_dir()


def _run_entry(run_folder: Path, family: str) -> ModelEntry:
    if family not in REGISTRY:
        raise PromotionError(f"Unknown model {family!r}; choose one of {', '.join(REGISTRY)}.")
    run_entry = persistence.read_manifest(run_folder).models.get(family)
    if run_entry is None:
        raise PromotionError(f"{run_folder} holds no trained {family} model to promote.")
    return run_entry


def _left_out(base_models: dict[str, ModelEntry], family: str) -> dict[str, str]:
    """The models built on ``family`` (the ensemble), which a new model of it leaves without valid weights."""
    return {
        name: f"its weights were fitted to the {short_name(family)} that was replaced"
        for name in base_models
        if family in REGISTRY[name].members
    }


def _promote(run_folder: Path, family: str, run_id: int | None, root: Path, base) -> dict[str, Any]:
    previous = read_pointer(root)
    base = _base_folder(root, base)
    run_entry = _run_entry(run_folder, family)

    generations = root / GENERATIONS_NAME
    generations.mkdir(parents=True, exist_ok=True)
    name = f"{utc_file_stamp()}-{family}-{uuid.uuid4().hex[:6]}"
    building = generations / f".building-{name}"
    try:
        left_out = _build_generation(building, base, run_folder, family, run_entry, run_id)
        _verify_generation(building, family)
        os.replace(building, generations / name)
        _sync_folder(generations)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    pointer = {
        "generation": name,
        "family": family,
        "run_id": run_id,
        "promoted_at": utc_timestamp(),
        "left_out": left_out,
        "history": [_without_history(previous), *previous.get("history", [])],
    }
    # The one step that switches models: the pointer is replaced whole, after the generation is complete.
    write_json_atomically(root / POINTER_NAME, pointer)
    return pointer


def rollback(root: Path | None = None) -> dict[str, Any]:
    """Return to the models in use before the last promotion; return the restored pointer."""
    root = root if root is not None else settings.active_dir()
    try:
        with _pointer_lock(root):
            pointer = read_pointer(root)
            history = pointer.get("history", [])
            if pointer["generation"] is None or not history:
                raise PromotionError("Nothing to roll back: the shipped models are in use.")
            restored = {**history[0], "history": history[1:]}
            if restored["generation"] is not None and not (root / GENERATIONS_NAME / restored["generation"]).is_dir():
                raise PromotionError(f"The previous models ({restored['generation']}) are missing from {root}.")
            write_json_atomically(root / POINTER_NAME, restored)
    except OSError as error:
        raise PromotionError(f"The pointer {root / POINTER_NAME} could not be rewritten ({error}).") from error
    return restored


@contextmanager
def _pointer_lock(root: Path) -> Iterator[None]:
    """Hold the lock that serialises promotions and rollbacks.

    Each one reads the pointer and writes a new one that keeps the old in its history; two at once
    (two browser tabs, or a tab and the command line) would otherwise both build on the same pointer,
    and the second would silently drop the first from the history that rollback walks.
    """
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _without_history(pointer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in pointer.items() if key != "history"}


def _build_generation(
    folder: Path, base: Path, run_folder: Path, family: str, run_entry: ModelEntry, run_id: int | None
) -> dict[str, str]:
    """Write the complete new models folder; return the models left out and why."""
    folder.mkdir(parents=True)
    base_manifest = persistence.read_manifest(base)
    models, left_out = {}, _left_out(base_manifest.models, family)
    for name, entry in base_manifest.models.items():
        if name == family or name in left_out:
            continue
        for artifact in entry.files:
            _link_or_copy(base / artifact, folder / artifact)
        models[name] = entry
    _link_or_copy(run_folder / run_entry.artifact, folder / run_entry.artifact)
    models[family] = run_entry.promoted(run_id)
    persistence.write_manifest(replace(base_manifest, models=models), folder)

    for name in SELF_CHECKING_FILES:
        if (base / name).exists():
            _link_or_copy(base / name, folder / name)

    probabilities = {}
    if (base / persistence.PROBABILITIES_NAME).exists():
        probabilities = persistence.load_test_probabilities(base)
    probabilities = {name: values for name, values in probabilities.items() if name in models}
    probabilities[family] = persistence.load_test_probabilities(run_folder)[family]
    persistence.save_test_probabilities(probabilities, folder)
    for path in folder.iterdir():
        _sync_file(path)
    _sync_folder(folder)
    return left_out


def _verify_generation(folder: Path, family: str) -> None:
    """Check every artefact against the manifest and load the promoted model; raise if anything is off."""
    manifest = persistence.read_manifest(folder)
    for name, entry in manifest.models.items():
        actual = sha256_file(folder / entry.artifact)
        if actual != entry.sha256:
            raise PromotionError(f"The copy of the {name} model does not match its checksum; nothing was changed.")
    try:
        model = persistence.load_model(family, folder)
    except ModelUnavailableError as error:
        raise PromotionError(f"The promoted {family} model does not load ({error}); nothing was changed.") from error
    probabilities = persistence.load_test_probabilities(folder)
    if set(probabilities) != set(manifest.models) or any(
        values.shape != (TEST_IMAGES, CLASSES) for values in probabilities.values()
    ):
        raise PromotionError("The test-set probabilities of the new models are incomplete; nothing was changed.")
    # One prediction proves the loaded model runs, not only that its file deserialises.
    blank = model.predict_proba(np.zeros((1, *IMAGE_SHAPE), dtype=np.uint8))
    if blank.shape != (1, 10) or not np.isfinite(blank).all():
        raise PromotionError(f"The promoted {family} model gives invalid probabilities; nothing was changed.")


def _link_or_copy(source: Path, target: Path) -> None:
    # Artefacts are replaced, never modified in place, so a hard link shares the bytes safely and costs no space.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _sync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def promote_run(run_id: int, database: str | os.PathLike | None = None, root: Path | None = None) -> dict[str, Any]:
    """Promote the model of the succeeded training run ``run_id`` from the registry."""
    run = _succeeded_run(run_id, database)
    return promote(run.folder, run.family, run_id=run.id, root=root)


def plan_run_promotion(
    run_id: int, database: str | os.PathLike | None = None, root: Path | None = None
) -> PromotionPlan:
    """What ``promote_run`` would change, without changing anything."""
    run = _succeeded_run(run_id, database)
    return plan_promotion(run.folder, run.family, run_id=run.id, root=root)


def _succeeded_run(run_id: int, database: str | os.PathLike | None):
    from digitlab.lab import runs

    with runs.RunRegistry(database) as registry:
        run = registry.get_run(run_id)
    if run.status != "succeeded":
        raise PromotionError(f"Run #{run_id} is {run.status}; only a run that succeeded can be promoted.")
    return run


def describe_pointer(pointer: dict[str, Any]) -> str:
    """One sentence saying which models are in use."""
    if pointer["generation"] is None:
        return "The shipped models are in use."
    source = f"run #{pointer['run_id']}" if pointer.get("run_id") is not None else "a trained folder"
    sentence = f"The {pointer['family']} model from {source} is in use (promoted {pointer['promoted_at']})."
    for name, reason in (pointer.get("left_out") or {}).items():
        sentence += f" The {name} is left out: {reason}; rolling back brings it back."
    return sentence
