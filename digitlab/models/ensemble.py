"""A weighted soft vote of the other families, the CNN's vote cast by a committee of CNNs."""

import itertools
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from digitlab.atomic import save_atomically
from digitlab.checksums import sha256_file
from digitlab.models.base import DigitClassifier, as_image_batch, normalised_rows, validation_split
from digitlab.models.neural import (
    PREDICTION_BATCH,
    CNNClassifier,
    batched_probabilities,
    network_input,
    traced_average,
)


class EnsembleClassifier(DigitClassifier):
    """A weighted soft vote of the other trained families, the CNN's vote cast by a committee of CNNs.

    The committee is the shipped CNN and extra copies of its network that
    the ensemble trains itself with other initialisation seeds (so other
    starting weights, shuffles and augmentations) on the same images; the
    committee's vote is their average. Networks that differ only in their
    seed make partly different mistakes, which the average cancels out. All
    of them hold out the same validation part of the training set as every
    other member. With ``style_share`` or ``keep_start`` a reusing fit
    fine-tunes the saved networks on writing styles, as the shipped CNN was.

    The weights make the fewest mistakes on that validation part, ties going
    to the lowest log-loss, searched on a grid over the simplex. Log-loss
    alone rewards calibration over diversity: it gives no weight to a member
    whose probabilities are overconfident even when its mistakes are the ones
    the others do not make.
    """

    name = "ensemble"
    title = "Ensemble (weighted soft vote)"
    artifact_name = "ensemble.json"
    members = ("svm", "mlp", "cnn")
    # The member whose vote the ensemble's own extra networks join.
    committee_member = "cnn"
    # Its extra networks train for ``epochs`` (the CNN's default when None).
    trains_in_epochs = True
    reuses = (
        "keeps its extra CNNs (or, with a style share or a kept share of the start, fine-tunes each as the CNN is "
        "fine-tuned) and chooses its weights again"
    )
    # Kept networks need only the same split; a later reuse that keeps fine-tuned networks asks no style share.
    reuse_requires = ("seed", "validation_size", "extra_cnn_seeds")

    def __init__(
        self,
        *,
        extra_cnn_seeds: tuple[int, ...] = (1, 2, 3, 4),
        epochs: int | None = None,
        style_share: float = 0.0,
        keep_start: float = 0.0,
        grid_steps: int = 20,
        validation_size: int = 5000,
        seed: int = 0,
    ):
        self.extra_cnn_seeds = extra_cnn_seeds
        self.epochs = epochs
        # The extra networks' writing-style examples and WiSE-FT share, as the CNN's own (``CNNClassifier``). With
        # either above zero a reusing ensemble fine-tunes its saved networks instead of keeping them: its committee
        # then reads real writing as the shipped CNN does, where networks trained on MNIST alone read fewer of
        # realworld's font-drawn styles and thick pens.
        self.style_share = style_share
        self.keep_start = keep_start
        self.grid_steps = grid_steps
        self.validation_size = validation_size
        self.seed = seed

    def fit(
        self,
        images,
        labels,
        *,
        progress=None,
        members: Mapping[str, DigitClassifier] | None = None,
        reuse_from=None,
        extra_examples=None,
    ):
        """Train the extra networks and choose the weights; ``members`` are the trained models to combine.

        ``reuse_from`` is the path of an ensemble saved with these hyperparameters: its extra networks are
        kept (checked against their SHA-256) and only the weights are chosen again, e.g. after a member was
        calibrated again; with a ``style_share`` or ``keep_start`` above zero each network is fine-tuned from
        its saved weights first. ``extra_examples`` (images, labels) join every extra network's training part.
        """
        if not members:
            raise ValueError("An ensemble is fitted from trained members; pass members={name: model}.")
        images = as_image_batch(images)
        labels = np.asarray(labels)
        self.members_ = dict(members)
        # A keep_start without a saved ensemble is refused by the first extra network's fit, before any training.
        self.fine_tuned_ = reuse_from is not None and self.fine_tunes_networks
        self.reused_ = reuse_from is not None and not self.fine_tuned_
        if self.reused_:
            self.extra_networks_ = self.saved_extra_networks(reuse_from)
        else:
            starts = self.saved_network_files(reuse_from) if self.fine_tuned_ else None
            self.extra_networks_ = self._fit_extra_networks(images, labels, progress, extra_examples, starts)
        _, held_out = validation_split(len(images), self.validation_size, self.seed)
        votes = np.stack([self._vote(name, images[held_out]) for name in self.members_])
        truth = labels[held_out]
        best_weights, best_score = None, (np.inf, np.inf)
        for weights in simplex_grid(len(self.members_), self.grid_steps):
            mixed = np.tensordot(weights, votes, axes=1)
            errors = int((mixed.argmax(axis=1) != truth).sum())
            loss = -np.log(np.clip(mixed[np.arange(len(truth)), truth], 1e-12, None)).mean()
            if (errors, loss) < best_score:
                best_weights, best_score = weights, (errors, loss)
        self.weights_ = dict(zip(self.members_, best_weights.round(4).tolist(), strict=True))
        self.validation_errors_, self.validation_log_loss_ = best_score[0], float(best_score[1])
        if progress:
            steps = self._progress_steps(self.fine_tuned_)
            progress(
                steps,
                steps,
                {"validation_errors": self.validation_errors_, "validation_log_loss": self.validation_log_loss_},
            )
        return self

    @property
    def fine_tunes_networks(self) -> bool:
        """Whether a reusing fit trains its saved networks further (on writing styles, or blended with their start)."""
        return bool(self.style_share or self.keep_start)

    def extra_examples_wanted(self, count: int) -> int:
        """As many writing-style examples as each extra network takes; all of them learn from the same ones."""
        return self._network(0, fine_tuning=False).extra_examples_wanted(count)

    def training_part(self, count: int) -> np.ndarray:
        return self._network(0, fine_tuning=False).training_part(count)

    def _progress_steps(self, fine_tuning: bool) -> int:
        """One step per extra network's epoch, and one for the weight search."""
        return len(self.extra_cnn_seeds) * self._network(0, fine_tuning).epochs + 1

    def _network(self, initialisation_seed: int, fine_tuning: bool) -> CNNClassifier:
        """An unfitted extra network: the CNN's settings, or its fine-tuning ones when it starts from a saved one."""
        settings = dict(CNNClassifier.reuse_settings) if fine_tuning else {}
        if self.epochs:
            settings["epochs"] = self.epochs
        return CNNClassifier(
            validation_size=self.validation_size,
            seed=self.seed,
            initialisation_seed=initialisation_seed,
            style_share=self.style_share,
            keep_start=self.keep_start,
            **settings,
        )

    def _fit_extra_networks(self, images, labels, progress, extra_examples, starts) -> dict[str, "CNNClassifier"]:
        """Train every extra network, from the saved file of its name in ``starts`` when given, else afresh."""
        networks = {}
        fine_tuning = starts is not None
        for position, initialisation_seed in enumerate(self.extra_cnn_seeds):
            name = f"cnn-seed{initialisation_seed}"
            network = self._network(initialisation_seed, fine_tuning)

            def report(done, total, details, position=position, name=name):
                progress(position * total + done, self._progress_steps(fine_tuning), {"network": name, **details})

            networks[name] = network.fit(
                images,
                labels,
                progress=report if progress else None,
                extra_examples=extra_examples,
                reuse_from=starts[name] if fine_tuning else None,
            )
        return networks

    def _vote(self, name: str, images: np.ndarray) -> np.ndarray:
        """A member's probabilities; the CNN's are averaged with the ensemble's own extra networks'."""
        if name == self.committee_member:
            forward = self._committee_forward()
            # All the networks run at once, so each takes its share of a part: memory stays that of one network's.
            part = max(1, PREDICTION_BATCH // len(self._committee[0]))
            return batched_probabilities(forward, network_input(images), part)
        return self.members_[name].predict_proba(images)

    def _committee_forward(self):
        """The committee's averaged output as one traced function, made once for the networks it has now."""
        voters = [self.members_[self.committee_member], *self.extra_networks_.values()]
        networks = tuple(voter.network_ for voter in voters)
        # A refit or a reload brings new networks, and with them a new function.
        if getattr(self, "_committee", (None,))[0] != networks:
            self._committee = (networks, traced_average(networks))
        return self._committee[1]

    def predict_proba(self, images):
        images = as_image_batch(images)
        mixed = sum(weight * self._vote(name, images) for name, weight in self.weights_.items() if weight > 0)
        return normalised_rows(mixed)

    def complexity(self):
        return {"member_models": sum(weight > 0 for weight in self.weights_.values())}

    def training_notes(self):
        notes = {
            "weights": self.weights_,
            "weight_selection": f"fewest errors on {self.validation_size} held-out training images, "
            "ties broken by the lowest log-loss",
            "cnn_committee": f"the CNN's vote is the average of the shipped CNN and its network trained again "
            f"with initialisation seeds {list(self.extra_cnn_seeds)}",
        }
        if getattr(self, "reused_", False):
            notes["cnn_committee"] += " (networks reused from the ensemble trained before; weights chosen again)"
        if getattr(self, "fine_tuned_", False):
            first = next(iter(self.extra_networks_.values()))
            notes["cnn_committee"] += (
                f" (each fine-tuned from the ensemble's saved network of its seed for up to {first.epochs} epochs at a "
                f"peak learning rate of {first.learning_rate:g}; weights chosen again)"
            )
        described = {
            name: {key: note for key, note in network_notes(network).items() if key in NETWORK_NOTES}
            for name, network in getattr(self, "extra_networks_", {}).items()
        }
        if any(described.values()):
            notes["extra_networks"] = described
        if hasattr(self, "validation_errors_"):
            notes["validation_errors"] = self.validation_errors_
            notes["validation_log_loss"] = round(self.validation_log_loss_, 5)
        return notes

    def extra_artifacts(self):
        return [self.network_file(name) for name in self.extra_networks_]

    @staticmethod
    def network_file(name: str) -> str:
        return f"ensemble-{name}.keras"

    def save(self, path):
        folder = Path(path).parent
        members = {}
        for name, weight in self.weights_.items():
            artifact = folder / self.members_[name].artifact_name
            members[name] = {"weight": weight, "sha256": sha256_file(artifact) if artifact.exists() else None}
        networks = {}
        for name, network in self.extra_networks_.items():
            destination = folder / self.network_file(name)
            # A reused network saved from this file keeps it: saving again would write the same weights as new bytes.
            loaded_from = getattr(network, "loaded_sha256_", None)
            if loaded_from is None or not destination.exists() or sha256_file(destination) != loaded_from:
                save_atomically(destination, network.save)
            networks[name] = {
                "artifact": destination.name,
                "sha256": sha256_file(destination),
                "initialisation_seed": network.initialisation_seed,
                "training_notes": network_notes(network),
            }
        Path(path).write_text(json.dumps({"members": members, "extra_networks": networks}, indent=1) + "\n")

    @classmethod
    def load(cls, path, *, params=None, members=None):
        described = json.loads(Path(path).read_text())
        members = members or {}
        for name, member in described["members"].items():
            if name not in members or member["sha256"] != members[name].sha256:
                raise ValueError(f"the ensemble was fitted to another {name} model; retrain the ensemble.")
        networks = described.get("extra_networks", {})
        recorded_seeds = tuple(network["initialisation_seed"] for network in networks.values())
        model = cls.from_params({**(params or {}), "extra_cnn_seeds": recorded_seeds})
        model.members_ = {name: members[name].model for name in described["members"]}
        model.extra_networks_ = model.saved_extra_networks(path)
        model.weights_ = {name: member["weight"] for name, member in described["members"].items()}
        return model

    def saved_network_files(self, path) -> dict[str, Path]:
        """The files of the extra networks of the ensemble saved at ``path``, each checked against its SHA-256."""
        folder = Path(path).parent
        networks = json.loads(Path(path).read_text()).get("extra_networks", {})
        recorded = sorted(network["initialisation_seed"] for network in networks.values())
        if recorded != sorted(self.extra_cnn_seeds):
            raise ValueError(
                f"The saved ensemble's networks have the seeds {recorded}, not {sorted(self.extra_cnn_seeds)}."
            )
        files = {}
        for name, network in networks.items():
            if sha256_file(folder / network["artifact"]) != network["sha256"]:
                raise ValueError(f"{network['artifact']} was modified or damaged; retrain the ensemble.")
            files[name] = folder / network["artifact"]
        return files

    def saved_extra_networks(self, path) -> dict[str, CNNClassifier]:
        """The extra networks of the ensemble saved at ``path``, each checked against its SHA-256.

        They are loaded with this ensemble's validation part and seed, the ones they were trained with.
        """
        networks = json.loads(Path(path).read_text()).get("extra_networks", {})
        loaded = {}
        for name, artifact in self.saved_network_files(path).items():
            network = networks[name]
            loaded[name] = CNNClassifier.load(
                artifact,
                params={
                    "validation_size": self.validation_size,
                    "seed": self.seed,
                    "initialisation_seed": network["initialisation_seed"],
                },
            )
            loaded[name].loaded_sha256_ = network["sha256"]
            # How a kept network was trained (fine-tuned, on writing styles) stays on record when it is saved again.
            loaded[name].saved_training_notes_ = network.get("training_notes", {})
        return loaded


# What an extra network's notes add to the ensemble's: how it differs from a CNN trained afresh on MNIST alone.
NETWORK_NOTES = ("started_from", "weights_blended", "writing_styles", "epochs_run")


def network_notes(network: CNNClassifier) -> dict:
    """``network``'s training notes: those recorded when it was trained, for one loaded from a saved ensemble."""
    return getattr(network, "saved_training_notes_", None) or network.training_notes()


def simplex_grid(dimensions: int, steps: int) -> list[np.ndarray]:
    """Every weight vector with ``dimensions`` entries in multiples of 1/steps that sum to 1."""
    vectors = []
    for combination in itertools.product(range(steps + 1), repeat=dimensions - 1):
        if sum(combination) <= steps:
            vectors.append(np.array([*combination, steps - sum(combination)], dtype=np.float64) / steps)
    return vectors
