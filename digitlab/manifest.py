"""What a models folder's ``manifest.json`` records: a :class:`Manifest` holding one :class:`ModelEntry` per model.

Training writes an entry, ``evaluate --write`` replaces its scores and promotion copies it; everything
else only reads it. Reading keeps every key these types do not know and the order the keys came in, so a
manifest read and written back is the same file byte for byte, and one written by a newer digitlab loses
nothing here. An entry needs only its artefact and the artefact's SHA-256 to be checked and loaded; older
entries lack some of the rest, which then reads as ``None``.
"""

from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Self

MANIFEST_SCHEMA = 1
# What an entry must name for its model to be checked and loaded at all.
REQUIRED_ENTRY_FIELDS = ("artifact", "sha256")
_JSON_KINDS = {
    dict: "an object",
    list: "a list",
    str: "text",
    bool: "true or false",
    int: "a number",
    float: "a number",
}


class ManifestError(ValueError):
    """A manifest lacks what every manifest holds; the message goes on from the manifest's path."""


class _Figures:
    """What the records of figures inside an entry (its metrics and timing) share: reading, writing, checking."""

    @classmethod
    def from_json(cls, recorded: Any, what: str) -> Self:
        return cls(**_arguments(cls, _json_object(recorded, what), what))

    def to_json(self) -> dict[str, Any]:
        return _written(self, _field_values(self))

    def missing(self) -> list[str]:
        """The figures this record lacks, by their names in the manifest."""
        return [key for key, value in _field_values(self).items() if value is None]


@dataclass(frozen=True, kw_only=True)
class Timing(_Figures):
    """How fast the model read the test set, on the machine that scored it."""

    batch_images: int | None = None
    batch_seconds: float | None = None
    single_image_ms: float | None = None
    # In every record here: the keys the type does not know, and the order all keys were read in, which
    # writing restores (a record made in code has none, and writes its fields in the order declared).
    extra: dict[str, Any] = field(default_factory=dict)
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    # The keys whose values must be JSON objects or lists; reading refuses anything else in a sentence.
    CONTAINERS: ClassVar[dict[str, type]] = {}


@dataclass(frozen=True, kw_only=True)
class Metrics(_Figures):
    """The model's scores on the 10,000 MNIST test images.

    ``per_class`` holds ten values of each of precision, recall, f1 and support, one per digit, and
    ``confusion_matrix`` counts the images of each true digit (rows) read as each digit (columns).
    """

    accuracy: float | None = None
    errors: int | None = None
    precision_macro: float | None = None
    recall_macro: float | None = None
    f1_macro: float | None = None
    per_class: dict[str, list[float]] | None = None
    confusion_matrix: list[list[int]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    CONTAINERS: ClassVar[dict[str, type]] = {"per_class": dict, "confusion_matrix": list}


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """What the manifest records about one trained model, in the order training writes it.

    ``hyperparameters`` are the family's own (``get_params``), ``complexity`` counts its parts by kind (e.g.
    ``{"parameters": 198442}``), ``training_notes`` are the family's words on how it was trained and
    ``history`` the per-epoch figures of a Keras model. ``run_id`` names the training run a promoted model
    came from.
    """

    family: str | None = None
    title: str | None = None
    artifact: str
    sha256: str
    size_bytes: int | None = None
    extra_artifacts: list[str] | None = None
    hyperparameters: dict[str, Any] | None = None
    seed: int | None = None
    train_size: int | None = None
    train_data_sha256: str | None = None
    test_data_sha256: str | None = None
    library_versions: dict[str, str] | None = None
    complexity: dict[str, int] | None = None
    training_seconds: float | None = None
    training_notes: dict[str, Any] | None = None
    trained_at: str | None = None
    machine: str | None = None
    metrics: Metrics | None = None
    timing: Timing | None = None
    history: dict[str, list[float]] | None = None
    run_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    CONTAINERS: ClassVar[dict[str, type]] = {
        "extra_artifacts": list,
        "hyperparameters": dict,
        "library_versions": dict,
        "complexity": dict,
        "training_notes": dict,
        "metrics": dict,
        "timing": dict,
        "history": dict,
    }

    @classmethod
    def from_json(cls, name: str, recorded: Any) -> Self:
        """The entry of model ``name``; raises :class:`ManifestError` when it cannot be checked or loaded."""
        what = f"the {name} model"
        recorded = _json_object(recorded, what)
        for key in REQUIRED_ENTRY_FIELDS:
            if key not in recorded:
                raise ManifestError(f"records {what} without its {key!r}")
            if not isinstance(recorded[key], str):
                raise ManifestError(f"records {key!r} of {what} as {_kind(recorded[key])}, not text")
        arguments = _arguments(cls, recorded, what)
        if arguments["metrics"] is not None:
            arguments["metrics"] = Metrics.from_json(arguments["metrics"], f"the metrics of {what}")
        if arguments["timing"] is not None:
            arguments["timing"] = Timing.from_json(arguments["timing"], f"the timing of {what}")
        return cls(**arguments)

    def to_json(self) -> dict[str, Any]:
        values = _field_values(self)
        values["metrics"] = None if self.metrics is None else self.metrics.to_json()
        values["timing"] = None if self.timing is None else self.timing.to_json()
        return _written(self, values)

    @property
    def files(self) -> list[str]:
        """The artefact and the files the model keeps beside it (an ensemble's own networks), which travel together."""
        return [self.artifact, *(self.extra_artifacts or [])]

    @property
    def accuracy(self) -> float | None:
        """The recorded test accuracy; None for an entry without scores."""
        return None if self.metrics is None else self.metrics.accuracy

    @property
    def members(self) -> tuple[str, ...]:
        """The models whose votes an ensemble recorded combining among its hyperparameters; empty for the others."""
        return tuple((self.hyperparameters or {}).get("members") or ())

    def title_or(self, name: str) -> str:
        """The title to show for the model; one without a title goes by its ``name``."""
        return name if self.title is None else self.title

    def promoted(self, run_id: int | None) -> Self:
        """This entry as promotion records it: with the training run it came from (null for a trained folder).

        Like a dictionary update, ``run_id`` keeps its place if the entry had one and goes last if it did not.
        """
        order = self.key_order or tuple(self.to_json())
        return replace(self, run_id=run_id, key_order=tuple(dict.fromkeys([*order, "run_id"])))


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A models folder's manifest: the entry of each model by name, in the order pages and tables list them."""

    schema: int | None = MANIFEST_SCHEMA
    models: dict[str, ModelEntry] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    CONTAINERS: ClassVar[dict[str, type]] = {}

    @classmethod
    def from_json(cls, recorded: Any) -> Self:
        """The manifest parsed from ``manifest.json``; raises :class:`ManifestError` for one that is not usable."""
        if not isinstance(recorded, dict) or not isinstance(recorded.get("models"), dict):
            raise ManifestError("does not have a 'models' table")
        arguments = _arguments(cls, recorded, "the manifest")
        arguments["models"] = {name: ModelEntry.from_json(name, entry) for name, entry in recorded["models"].items()}
        return cls(**arguments)

    def to_json(self) -> dict[str, Any]:
        values = _field_values(self)
        values["models"] = {name: entry.to_json() for name, entry in self.models.items()}
        return _written(self, values)


def _kind(value: Any) -> str:
    return "null" if value is None else _JSON_KINDS.get(type(value), type(value).__name__)


def _json_object(recorded: Any, what: str) -> dict[str, Any]:
    if not isinstance(recorded, dict):
        raise ManifestError(f"records {what} as {_kind(recorded)}, not an object")
    return recorded


def _own_fields(record_type: type) -> list[str]:
    """The JSON keys a record type reads into fields of its own, in the order a new record writes them."""
    return [item.name for item in fields(record_type) if item.name not in ("extra", "key_order")]


def _arguments(record_type: type, recorded: dict[str, Any], what: str) -> dict[str, Any]:
    """Keyword arguments that rebuild ``recorded`` as ``record_type``: its own keys (None where absent), the
    keys it does not know, and the order they all came in."""
    own = _own_fields(record_type)
    for key, container in record_type.CONTAINERS.items():
        value = recorded.get(key)
        if value is not None and not isinstance(value, container):
            raise ManifestError(f"records {key!r} of {what} as {_kind(value)}, not {_JSON_KINDS[container]}")
    return {
        **{key: recorded.get(key) for key in own},
        "extra": {key: value for key, value in recorded.items() if key not in own},
        "key_order": tuple(recorded),
    }


def _field_values(record: Any) -> dict[str, Any]:
    return {key: getattr(record, key) for key in _own_fields(type(record))}


def _written(record: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The record's JSON: the keys it was read with in their order, then new ones in field order.

    A field that is None is left out unless it was read as null, so an entry rewritten after a change differs
    from the file it came from only where it was changed.
    """
    present = {key: value for key, value in values.items() if value is not None or key in record.key_order}
    present.update(record.extra)
    return {**{key: present[key] for key in record.key_order if key in present}, **present}
