"""Keep the README's generated tables equal to the shipped artefacts.

The tables live between marker comments in README.md and are rewritten from
``models/manifest.json``, ``models/test_probabilities.npz`` (with the MNIST
test labels), ``models/benchmark.json``, ``models/robustness.json``, ``models/detector.json`` and
``models/realworld.json``, never typed by hand; a test fails
when they drift apart.
"""

import json
import os
import re
from pathlib import Path

import numpy as np

from digitlab import persistence, settings
from digitlab.checks.bench import BENCHMARK_NAME, benchmark_table
from digitlab.checks.realworld import RECORD_COMMAND, read_realworld_record, realworld_table
from digitlab.data.mnist import load_mnist
from digitlab.errors import DigitlabError
from digitlab.formatting import markdown_table
from digitlab.insight import calibration
from digitlab.insight.robustness import ATTACK_EPSILONS, Robustness, RobustnessUnavailableError, load_robustness
from digitlab.manifest import Manifest
from digitlab.models.base import LOW_CONFIDENCE
from digitlab.models.detector import RECORD_NAME, DetectorRecord, read_detector_record

README = settings.PROJECT_ROOT / "README.md"
SECTIONS = ("scores", "calibration", "benchmark", "robustness", "refusals", "realworld")


def scores_table(manifest: Manifest) -> str:
    headers = ["model", "test accuracy", "errors", "macro F1", "trained on", "training (s)", "size (MB)", "size"]
    rows = []
    for name, entry in manifest.models.items():
        metrics = entry.metrics
        (unit, count), *_ = entry.complexity.items()
        rows.append(
            [
                f"{entry.title} (`{name}`)",
                f"{metrics.accuracy:.2%}",
                metrics.errors,
                f"{metrics.f1_macro:.4f}",
                f"{entry.train_size:,} images",
                f"{entry.training_seconds:.0f}",
                f"{entry.size_bytes / 1e6:.1f}",
                f"{count:,} {unit.replace('_', ' ')}",
            ]
        )
    return markdown_table(headers, rows)


def calibration_table(probabilities: dict[str, np.ndarray], labels: np.ndarray, manifest: Manifest) -> str:
    """Each shipped model's calibration error and confidence AUROC on the test set, and how its unsure answers go."""
    headers = [
        "model",
        "expected calibration error",
        "AUROC of confidence, right vs wrong",
        f"answers below {LOW_CONFIDENCE:.0%}",
        "mistakes among them",
    ]
    rows = []
    for row in calibration.calibration_rows(probabilities, labels):
        name = row["model"]
        if name not in manifest.models:
            continue
        confidence, correct = calibration.top_label(probabilities[name], labels)
        unsure = confidence < LOW_CONFIDENCE
        rows.append(
            [
                f"{manifest.models[name].title} (`{name}`)",
                f"{row['ece']:.2%}",
                f"{row['auroc']:.3f}",
                f"{unsure.mean():.2%}",
                f"{(unsure & ~correct).sum()} of {(~correct).sum()}",
            ]
        )
    return markdown_table(headers, rows)


def refusals_table(record: DetectorRecord) -> str:
    """How the not-a-digit detector did on its validation drawings, from its record."""
    headers = ["validation set", "refused as not a digit"]
    rows = [[f"digits: {source}", f"{share:.2%}"] for source, share in record.digits_refused.items()]
    rows += [[f"not digits: {kind}s", f"{share:.1%}"] for kind, share in record.non_digits_refused.items()]
    training = record.training
    return markdown_table(headers, rows) + (
        f"\n\nThreshold {record.threshold:.2f} on the digit score; AUROC {record.auroc:.4f}. "
        f"Validation: {training.get('validation_digits', 0):,} digits and {training.get('validation_non_digits', 0):,} "
        f"drawings that are not digits, from the fonts {', '.join(training.get('validation_fonts', []))}, "
        "which the detector never trained on."
    )


def robustness_table(robustness: Robustness, manifest: Manifest) -> str:
    """Each model's clean accuracy, mean corruption error, worst corruption and accuracy under each attack."""
    epsilons = [f"{eps:g}" for eps in ATTACK_EPSILONS]
    rows = []
    for name in robustness.models:
        worst = min(robustness.corruptions, key=lambda corruption: robustness.corruptions[corruption][name])
        rows.append(
            [
                f"{manifest.models[name].title if name in manifest.models else name} (`{name}`)",
                f"{robustness.clean[name]:.2%}",
                f"{robustness.mean_corruption_error(name):.2%}",
                f"{worst} ({robustness.corruptions[worst][name]:.1%})",
                *(attack_accuracy(robustness, name, eps) for eps in epsilons),
            ]
        )
    headers = ["model", "clean", "mean corruption error", "worst corruption", *(f"PGD eps {eps}" for eps in epsilons)]
    return markdown_table(headers, rows) + (
        f"\n\nCorruptions on all {robustness.test_images:,} test images; attacks on a fixed "
        f"{robustness.attack_images:,} of them (the SVM and the ensemble by transfer from the CNN). Measured in "
        f"{robustness.seconds:.0f} s by `python -m digitlab robustness`."
    )


def attack_accuracy(robustness: Robustness, name: str, eps: str) -> str:
    return f"{robustness.attacks[name][eps]:.1%}" if eps in robustness.attacks[name] else "-"


def generated_sections(models_dir: str | os.PathLike | None = None) -> dict[str, str]:
    folder = persistence.resolve_models_dir(models_dir)
    manifest = persistence.read_manifest(folder)
    sections = {"scores": scores_table(manifest)}
    _, test_labels = load_mnist("test")
    sections["calibration"] = calibration_table(persistence.load_test_probabilities(folder), test_labels, manifest)
    benchmark = folder / BENCHMARK_NAME
    sections["benchmark"] = (
        benchmark_table(json.loads(benchmark.read_text()))
        if benchmark.exists()
        else "No benchmark has been run yet: `make bench`."
    )
    try:
        sections["robustness"] = robustness_table(load_robustness(folder, manifest), manifest)
    except RobustnessUnavailableError as error:
        sections["robustness"] = f"No robustness figures for these models: {error}"
    sections["refusals"] = (
        refusals_table(read_detector_record(folder))
        if (folder / RECORD_NAME).exists()
        else "No not-a-digit detector has been trained yet: `python -m digitlab train-detector`."
    )
    record = read_realworld_record(folder)
    sections["realworld"] = (
        realworld_table(
            record,
            {name: entry.title for name, entry in manifest.models.items()},
            {name: entry.sha256 for name, entry in manifest.models.items()},
        )
        if record is not None
        else f"No real-world figures have been recorded yet: `{RECORD_COMMAND}`."
    )
    return sections


def _pattern(section: str) -> re.Pattern:
    return re.compile(rf"(<!-- {section}:start -->\n)(.*?)(\n<!-- {section}:end -->)", re.DOTALL)


def readme_sections(text: str) -> dict[str, str]:
    """The text currently between each pair of markers."""
    found = {}
    for section in SECTIONS:
        match = _pattern(section).search(text)
        if match is None:
            raise DigitlabError(f"README.md lacks the <!-- {section}:start --> and <!-- {section}:end --> markers.")
        found[section] = match.group(2)
    return found


def update_readme(path: Path = README, models_dir: str | os.PathLike | None = None) -> bool:
    """Rewrite the generated sections; return whether anything changed."""
    if not path.is_file():
        raise DigitlabError(
            f"There is no {path.name} at {path}: the README tables are rewritten in a checkout of the project."
        )
    text = path.read_text()
    updated = text
    for section, content in generated_sections(models_dir).items():
        readme_sections(updated)
        updated = _pattern(section).sub(
            lambda match, content=content: match.group(1) + content + match.group(3), updated
        )
    if updated != text:
        path.write_text(updated)
    return updated != text
