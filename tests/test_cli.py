import json

import numpy as np
import pytest
from PIL import Image

from digitlab.cli import main


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, mnist_test):
    """The first test digit (a 7) saved in every supported format, mode and polarity."""
    folder = tmp_path_factory.mktemp("images")
    digit = np.kron(mnist_test[0][0], np.ones((6, 6), dtype=np.uint8))  # 168 x 168
    dark_on_light = 255 - digit
    rgba = np.zeros((*digit.shape, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = digit
    images = {
        "gray.png": Image.fromarray(digit),
        "paper.jpg": Image.fromarray(dark_on_light).convert("RGB"),
        "scan.bmp": Image.fromarray(dark_on_light),
        "palette.gif": Image.fromarray(digit).convert("P"),
        "scan.tiff": Image.fromarray(dark_on_light),
        "canvas.png": Image.fromarray(rgba, "RGBA"),
    }
    paths = []
    for name, image in images.items():
        image.save(folder / name)
        paths.append(folder / name)
    return paths


def test_predict_prints_one_json_line_per_file_and_model(digit_files, tiny_models_dir, capsys):
    code = main(["predict", *map(str, digit_files), "--model", "all", "--json", "--models-dir", str(tiny_models_dir)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert len(lines) == len(digit_files) * 3
    for line in lines:
        assert set(line) == {"path", "model", "digit", "confidence", "probabilities"}
        assert len(line["probabilities"]) == 10 and abs(sum(line["probabilities"]) - 1) < 1e-3
        assert line["confidence"] == max(line["probabilities"])


def test_predict_reads_the_digit_in_every_format(digit_files, tiny_models_dir, capsys):
    main(["predict", *map(str, digit_files), "--model", "svm", "--json", "--models-dir", str(tiny_models_dir)])
    digits = [json.loads(line)["digit"] for line in capsys.readouterr().out.splitlines()]
    assert digits == [7] * len(digit_files)


def test_bad_files_get_one_line_each_and_the_rest_go_on(digit_files, tiny_models_dir, tmp_path, capsys):
    empty = tmp_path / "empty.png"
    empty.touch()
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    arguments = [str(empty), str(text), str(blank), str(tmp_path / "missing.png"), str(tmp_path), str(digit_files[0])]
    code = main(["predict", *arguments, "--model", "cnn", "--models-dir", str(tiny_models_dir)])
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert code != 0
    assert len(errors) == 5
    for path, line in zip(arguments, errors, strict=False):
        assert line.startswith("error: ") and path in line
    assert "No digit found" in errors[2]
    assert captured.out.count("reads") == 1


def test_missing_models_folder_is_a_one_line_error(tmp_path, digit_files, capsys):
    code = main(["predict", str(digit_files[0]), "--models-dir", str(tmp_path)])
    assert code == 2
    assert "python -m digitlab train" in capsys.readouterr().err


def test_train_and_evaluate_from_the_command_line(tmp_path, mnist_dir, capsys):
    out = tmp_path / "models"
    arguments = ["--model", "mlp", "--epochs", "1", "--train-size", "500", "--out", str(out), "--data-dir"]
    assert main(["train", *arguments, str(mnist_dir)]) == 0
    assert "mlp: test accuracy" in capsys.readouterr().out
    assert (out / "mlp.keras").exists() and (out / "manifest.json").exists()
    assert main(["evaluate", "--models-dir", str(out), "--data-dir", str(mnist_dir)]) == 0
    assert "| mlp |" in capsys.readouterr().out
