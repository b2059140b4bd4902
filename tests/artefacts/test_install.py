"""The package as users install it: build the wheel, install it into a fresh virtual environment, run ``digitlab``.

The wheel is built offline (``--no-build-isolation``, the setuptools pinned in requirements-dev.txt) from a copy
of the files it is made of, so the build leaves nothing in the project. The throwaway environment sees this
environment's site-packages through a ``.pth`` file, so TensorFlow and the rest are not installed again, but not
the project's source: the ``digitlab`` it runs is the installed one, with the models packaged inside it.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from PIL import Image

from digitlab.persistence import read_manifest
from tests.support import PROJECT_ROOT

# What the wheel is built from (pyproject.toml's packages, package-dir and readme).
WHEEL_SOURCES = ("pyproject.toml", "README.md", "digitlab", "models")
SHIPPED = read_manifest(PROJECT_ROOT / "models").models


def run(command: list, **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, **options)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in WHEEL_SOURCES:
        path = PROJECT_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("wheel")
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, source]
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("digitlab-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A virtual environment holding only the installed wheel, borrowing this one's dependencies."""
    folder = tmp_path_factory.mktemp("venv")
    created = run([sys.executable, "-m", "venv", "--without-pip", folder])
    assert created.returncode == 0, created.stderr
    python = folder / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    Path(purelib, "outer-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return folder


@pytest.fixture
def environment() -> dict:
    """This process's environment without anything that points at the project's source or models."""
    hidden = {"DIGITLAB_MODELS_DIR", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    return {**{name: value for name, value in os.environ.items() if name not in hidden}, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_every_pinned_requirement_is_a_dependency_its_pin_satisfies():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    declared = [*project["dependencies"], *(requirement for extra in extras for requirement in extra)]
    ranges = {canonicalize_name(requirement.name): requirement.specifier for requirement in map(Requirement, declared)}
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        pin = Requirement(line)
        name = canonicalize_name(pin.name)
        assert name in ranges, f"{pin.name} is pinned in requirements.txt but is not a dependency in pyproject.toml"
        (version,) = [specifier.version for specifier in pin.specifier if specifier.operator == "=="]
        assert ranges[name].contains(version), f"{pin.name}=={version} is outside pyproject.toml's {ranges[name]}"


def test_wheel_holds_the_package_the_models_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert "digitlab = digitlab.cli:main" in scripts
    # Every module of the package, in each of its subpackages, is in the wheel.
    modules = {path.relative_to(PROJECT_ROOT).as_posix() for path in (PROJECT_ROOT / "digitlab").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert "digitlab/shipped_models/manifest.json" in names
    for entry in SHIPPED.values():
        for artifact in entry.files:
            assert f"digitlab/shipped_models/{artifact}" in names
    assert {name.split("/")[0] for name in names if not name.startswith("digitlab-")} == {"digitlab"}


@pytest.fixture
def digit(tmp_path, mnist_test) -> int:
    """A real MNIST test digit as ``digit.png`` in a temporary folder; its label."""
    images, labels = mnist_test
    Image.fromarray(images[0]).save(tmp_path / "digit.png")
    return int(labels[0])


def test_installed_command_reads_a_digit_from_any_folder(venv, environment, tmp_path, digit):

    located = run(
        [venv / "bin" / "python", "-c", "import digitlab.settings as s; print(s.__file__); print(s.models_dir())"],
        cwd=tmp_path,
        env=environment,
    )
    assert located.returncode == 0, located.stderr
    module, models = located.stdout.split()
    assert Path(module).is_relative_to(venv.resolve())
    assert Path(models).is_relative_to(venv.resolve()) and Path(models, "manifest.json").exists()

    predicted = run([venv / "bin" / "digitlab", "predict", "digit.png", "--json"], cwd=tmp_path, env=environment)
    assert predicted.returncode == 0, predicted.stderr
    readings = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [reading["model"] for reading in readings] == list(SHIPPED)
    assert {reading["model"]: reading["digit"] for reading in readings} == dict.fromkeys(SHIPPED, digit)


def test_installed_command_without_models_says_where_to_point_it(venv, environment, tmp_path, digit):
    empty = tmp_path / "no-models"
    empty.mkdir()
    environment["DIGITLAB_MODELS_DIR"] = str(empty)

    predicted = run([venv / "bin" / "digitlab", "predict", "digit.png"], cwd=tmp_path, env=environment)
    assert predicted.returncode != 0
    assert predicted.stdout == ""
    (line,) = predicted.stderr.strip().splitlines()
    assert "Traceback" not in line
    assert str(empty) in line and "DIGITLAB_MODELS_DIR" in line


@pytest.mark.parametrize(
    ("command", "refusal"),
    [(["readme"], "in a checkout of the project"), (["export", "--model", "mlp"], "installed with the package")],
)
def test_installed_command_leaves_the_package_alone_and_says_why(venv, environment, tmp_path, command, refusal):
    ran = run([venv / "bin" / "digitlab", *command], cwd=tmp_path, env=environment)

    assert ran.returncode != 0
    (line,) = ran.stderr.strip().splitlines()
    assert "Traceback" not in line and refusal in line
