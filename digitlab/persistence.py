"""Saving and loading trained models, their manifest and their test-set probabilities.

A models folder holds one artefact per model (``.keras`` for Keras, ``.skops``
for scikit-learn; neither executes code on load), ``manifest.json`` with what
each model is and how it scored, and ``test_probabilities.npz``. Loading checks
the artefact's SHA-256 against the manifest, so a swapped or damaged file is
refused before it is deserialised.
"""

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from digitlab import settings
from digitlab.atomic import save_atomically, write_json_atomically
from digitlab.checksums import sha256_file
from digitlab.errors import ModelUnavailableError
from digitlab.manifest import Manifest, ManifestError, ModelEntry
from digitlab.models.base import DigitClassifier, TrainedMember
from digitlab.models.registry import REGISTRY

MANIFEST_NAME = "manifest.json"
PROBABILITIES_NAME = "test_probabilities.npz"


def resolve_models_dir(models_dir: str | os.PathLike | None) -> Path:
    return Path(models_dir) if models_dir is not None else settings.models_dir()


def writable_models_dir(models_dir: str | os.PathLike | None) -> Path:
    """The models folder to write into; never the copy installed inside the package, which an upgrade replaces."""
    folder = resolve_models_dir(models_dir)
    if folder.resolve() == settings.PACKAGED_MODELS_DIR.resolve():
        raise ModelUnavailableError(
            f"{folder} holds the models installed with the package and is not written to; give a folder to write "
            f"into (--out, --models-dir or --output) or set {settings.MODELS_DIR_VARIABLE}."
        )
    return folder


def read_manifest(models_dir: str | os.PathLike | None = None) -> Manifest:
    """The folder's manifest; an empty one when the folder has none yet."""
    path = resolve_models_dir(models_dir) / MANIFEST_NAME
    if not path.exists():
        return Manifest()
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(f"{path} is not a readable manifest ({error}); retrain the models.") from error
    try:
        return Manifest.from_json(recorded)
    except ManifestError as error:
        raise ModelUnavailableError(f"{path} {error}; retrain the models.") from error


def write_manifest(manifest: Manifest, models_dir: str | os.PathLike | None = None) -> Path:
    path = writable_models_dir(models_dir) / MANIFEST_NAME
    write_json_atomically(path, manifest.to_json())
    return path


def save_artifact(model: DigitClassifier, models_dir: str | os.PathLike | None = None) -> ModelEntry:
    """Write the model's artefact atomically and return the manifest entry of its files, for training to complete.

    The size counts the files the model keeps beside its artefact (an ensemble's own networks), which the
    entry lists as ``extra_artifacts``.
    """
    folder = writable_models_dir(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / model.artifact_name
    save_atomically(path, model.save)
    extras = model.extra_artifacts()
    return ModelEntry(
        artifact=model.artifact_name,
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size + sum((folder / extra).stat().st_size for extra in extras),
        extra_artifacts=extras or None,
    )


def load_model(name: str, models_dir: str | os.PathLike | None = None) -> DigitClassifier:
    """A fitted model from a models folder (default: the shipped ``models/``), verified against its manifest."""
    entry, path = verified_artifact(name, models_dir)
    folder = path.parent
    family = REGISTRY[name]
    members = {member: _trained_member(name, member, folder) for member in family.members}
    try:
        return family.load(path, params=entry.hyperparameters, members=members)
    except Exception as error:  # noqa: BLE001 - any loader failure means the same thing to the user.
        raise ModelUnavailableError(f"{path} could not be loaded ({type(error).__name__}: {error}).") from error


def verified_artifact(name: str, models_dir: str | os.PathLike | None = None) -> tuple[ModelEntry, Path]:
    """The manifest entry of a trained model and the path of its artefact, whose SHA-256 matches the entry."""
    if name not in REGISTRY:
        raise ModelUnavailableError(f"Unknown model {name!r}; choose one of {', '.join(REGISTRY)}.")
    folder = resolve_models_dir(models_dir)
    entry = read_manifest(folder).models.get(name)
    if entry is None:
        if not (folder / MANIFEST_NAME).exists():
            raise ModelUnavailableError(
                f"No trained {name} model in {folder}, which holds no models: set {settings.MODELS_DIR_VARIABLE} "
                f"to a folder of trained models or run 'python -m digitlab train --model {name}'."
            )
        raise ModelUnavailableError(
            f"No trained {name} model in {folder}; run 'python -m digitlab train --model {name}'."
        )
    path = folder / entry.artifact
    if not path.exists():
        raise ModelUnavailableError(f"{path} is missing; retrain with 'python -m digitlab train --model {name}'.")
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ModelUnavailableError(
            f"{path} does not match the manifest (SHA-256 {actual[:12]}..., expected {entry.sha256[:12]}...); "
            "it was modified or damaged, so it is not loaded. Restore it or retrain."
        )
    return entry, path


def _trained_member(name: str, member: str, folder: Path) -> TrainedMember:
    """A member that ``name`` combines, loaded and checked like any model, with its artefact's SHA-256."""
    try:
        model = load_model(member, folder)
    except ModelUnavailableError as error:
        message = f"The {name} model needs the {member} model, which cannot be used: {error}"
        raise ModelUnavailableError(message) from error
    return TrainedMember(model, read_manifest(folder).models[member].sha256)


def save_test_probabilities(probabilities: dict[str, np.ndarray], models_dir: str | os.PathLike | None = None):
    """Store each model's test-set probabilities as float16, merged with those already stored."""
    folder = writable_models_dir(models_dir)
    merged = load_test_probabilities(folder) if (folder / PROBABILITIES_NAME).exists() else {}
    merged.update({name: np.asarray(values, dtype=np.float16) for name, values in probabilities.items()})
    save_atomically(folder / PROBABILITIES_NAME, lambda temporary: np.savez_compressed(temporary, **merged))


def load_test_probabilities(models_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Each model's stored ``(10000, 10)`` test-set probabilities, as float32."""
    path = resolve_models_dir(models_dir) / PROBABILITIES_NAME
    if not path.exists():
        raise ModelUnavailableError(f"{path} is missing; run 'python -m digitlab evaluate --write' to create it.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name].astype(np.float32) for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ModelUnavailableError(
            f"{path} is damaged ({error}); run 'python -m digitlab evaluate --write'."
        ) from error
