"""Keep the README's score and benchmark tables equal to the shipped artefacts.

The tables live between marker comments in README.md and are rewritten from
``models/manifest.json`` and ``models/benchmark.json``, never typed by hand;
a test fails when they drift apart.
"""

import json
import os
import re
from pathlib import Path

from digitlab import persistence, settings
from digitlab.checks.bench import BENCHMARK_NAME, benchmark_table
from digitlab.errors import DigitlabError
from digitlab.formatting import markdown_table
from digitlab.manifest import Manifest

README = settings.PROJECT_ROOT / "README.md"
SECTIONS = ("scores", "benchmark")


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


def generated_sections(models_dir: str | os.PathLike | None = None) -> dict[str, str]:
    folder = persistence.resolve_models_dir(models_dir)
    sections = {"scores": scores_table(persistence.read_manifest(folder))}
    benchmark = folder / BENCHMARK_NAME
    sections["benchmark"] = (
        benchmark_table(json.loads(benchmark.read_text()))
        if benchmark.exists()
        else "No benchmark has been run yet: `make bench`."
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
            raise ValueError(f"README.md lacks the <!-- {section}:start --> and <!-- {section}:end --> markers.")
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
