import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from digitlab import settings
from digitlab.checks.realworld import NON_DIGIT_SOURCES, SOURCES, STYLE_SOURCE, UCI_SOURCE
from digitlab.cli import main
from digitlab.models.base import LOW_CONFIDENCE
from digitlab.models.registry import REGISTRY
from digitlab.models.splitter import SPLITTER_RECORD, read_splitter_record
from digitlab.persistence import read_manifest


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
    assert len(lines) == len(digit_files) * len(REGISTRY)
    for line in lines:
        reading = {"path", "model", "digit", "confidence", "low_confidence", "probabilities"}
        verdict = {"not_a_digit", "digit_score", "threshold"}
        assert set(line) == reading | verdict | ({"closest"} if line["not_a_digit"] else set())
        assert line["not_a_digit"] == (line["digit_score"] < line["threshold"])
        assert (line["digit"] is None) == line["not_a_digit"]
        assert line["low_confidence"] == (line["confidence"] < LOW_CONFIDENCE)
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


def test_predict_reads_a_48_megapixel_phone_photo(tmp_path, tiny_models_dir, capsys):
    photo = Image.new("RGB", (8064, 6048), (232, 228, 218))
    photo.paste((25, 25, 35), (3872, 1512, 4192, 4536))
    path = tmp_path / "phone.jpg"
    photo.save(path, quality=90)

    code = main(["predict", str(path), "--model", "svm", "--json", "--models-dir", str(tiny_models_dir)])

    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    (line,) = [json.loads(line) for line in captured.out.splitlines()]
    assert line["path"] == str(path) and line["model"] == "svm"


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


def test_train_with_writing_styles_records_the_extra_examples(tmp_path, mnist_dir, capsys):
    out = tmp_path / "models"
    arguments = ["--model", "cnn", "--epochs", "1", "--train-size", "300", "--style-share", "0.1", "--out", str(out)]
    assert main(["train", *arguments, "--data-dir", str(mnist_dir)]) == 0
    entry = read_manifest(out).models["cnn"]
    assert entry.hyperparameters["style_share"] == 0.1
    # 300 images hold out 30 for validation; a tenth of the other 270 is 27 examples, less any preprocessing refused.
    assert "extra examples made from the training part" in entry.training_notes["writing_styles"]
    assert 24 <= int(entry.training_notes["writing_styles"].split()[0]) <= 27
    assert "making writing-style examples" in capsys.readouterr().err


def test_a_negative_style_share_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", "cnn", "--style-share", "-1"])
    assert "must be 0 or more" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1", "-0.1", "half"])
def test_a_kept_share_of_the_start_outside_0_to_1_is_refused_by_the_parser(capsys, value):
    with pytest.raises(SystemExit):
        main(["train", "--model", "cnn", "--reuse", "--keep-start", value])
    assert "--keep-start" in capsys.readouterr().err


def test_a_kept_share_of_the_start_without_reuse_is_refused_at_once(capsys):
    assert main(["train", "--model", "cnn", "--keep-start", "0.3"]) == 2
    assert "--keep-start blends a fine-tuned network with its start, so it needs --reuse." in capsys.readouterr().err


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def one_bit_png(width: int, height: int) -> bytes:
    """A valid black 1-bit PNG of any size, compressed row by row without holding the image in memory."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, digit_files):
    """Every kind of bad input the issue lists, by name."""
    folder = tmp_path_factory.mktemp("bad")
    whole_png = digit_files[0].read_bytes()
    whole_jpeg = digit_files[1].read_bytes()
    files = {
        "empty.png": b"",
        "notes.png": b"these are my notes, not a picture",
        "truncated.png": whole_png[: len(whole_png) // 2],
        "truncated.jpg": whole_jpeg[: len(whole_jpeg) // 3],
        "huge.png": one_bit_png(30_000, 30_000)[:4096],
        "bomb.png": one_bit_png(12_000, 12_000),
    }
    paths = {}
    for name, payload in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(payload)
    Image.new("L", (80, 80), 255).save(folder / "blank.png")
    Image.new("RGB", (80, 80), (30, 120, 200)).save(folder / "single-colour.png")
    noise = np.random.default_rng(0).integers(0, 256, (120, 120), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    for name in ("blank.png", "single-colour.png", "noise.png"):
        paths[name] = folder / name
    paths["missing.png"] = folder / "missing.png"
    paths["a-folder"] = folder
    return paths


EXPECTED_SENTENCES = {
    "empty.png": "file is empty",
    "notes.png": "not a readable image",
    "truncated.png": "damaged or truncated",
    "truncated.jpg": "damaged or truncated",
    "huge.png": "can be read safely",
    "bomb.png": "cannot be read safely",
    "blank.png": "No digit found",
    "single-colour.png": "No digit found",
    "noise.png": "random noise",
    "missing.png": "no such file",
    "a-folder": "is a directory",
}


@pytest.mark.parametrize("multi", [False, True])
def test_every_bad_input_gets_one_sentence_and_a_failing_exit(bad_files, tiny_models_dir, capsys, multi):
    names = list(EXPECTED_SENTENCES)
    arguments = ["predict", *(str(bad_files[name]) for name in names), "--model", "svm"]
    code = main([*arguments, "--models-dir", str(tiny_models_dir), *(["--multi"] if multi else [])])
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert code != 0 and captured.out == ""
    assert len(errors) == len(names)
    for name, line in zip(names, errors, strict=True):
        assert line.startswith("error: ") and str(bad_files[name]) in line
        assert EXPECTED_SENTENCES[name] in line, line
        assert line.endswith(".") or line.endswith(")."), line


def test_bad_inputs_never_show_a_traceback_from_the_real_command(bad_files, tiny_models_dir):
    names = list(EXPECTED_SENTENCES)
    command = [sys.executable, "-m", "digitlab", "predict", *(str(bad_files[name]) for name in names)]
    environment = {**os.environ, "PYTHONWARNINGS": "default"}
    result = subprocess.run(
        [*command, "--model", "svm", "--models-dir", str(tiny_models_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == len(names)


def compose_line(digits: list[np.ndarray], gap: int = 12) -> np.ndarray:
    """MNIST digits side by side, enlarged three times, dark on light as on paper."""
    height = 28
    line = np.concatenate([np.pad(digit, ((0, 0), (0, gap))) for digit in digits], axis=1)
    line = np.pad(line, ((height // 2, height // 2), (gap, 0)))
    return 255 - np.kron(line, np.ones((3, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def number_file(tmp_path_factory, mnist_train):
    images, labels = mnist_train
    chosen = [1, 3, 5]
    path = tmp_path_factory.mktemp("number") / "number.png"
    Image.fromarray(compose_line([images[index] for index in chosen])).save(path)
    return path, "".join(str(labels[index]) for index in chosen)


def test_predict_multi_prints_the_number_with_digits_and_boxes(number_file, tiny_models_dir, capsys):
    path, _ = number_file
    code = main(["predict", str(path), "--multi", "--json", "--model", "svm", "--models-dir", str(tiny_models_dir)])
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert set(line) == {"path", "model", "number", "digits"}
    assert line["path"] == str(path) and line["model"] == "svm"
    kept = [digit for digit in line["digits"] if not digit["not_a_digit"]]
    assert len(line["number"]) == 3 and line["number"] == "".join(str(digit["digit"]) for digit in kept)
    width, height = Image.open(path).size
    lefts = []
    for digit in line["digits"]:
        assert set(digit) == {"digit", "confidence", "low_confidence", "box", "not_a_digit"}
        x, y, w, h = digit["box"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert x + w <= width and y + h <= height
        lefts.append(x)
    assert lefts == sorted(lefts)


def test_the_most_accurate_model_cuts_a_number_for_every_model(number_file, tiny_models_dir, monkeypatch, capsys):
    import digitlab.recognise as recognise

    seen = {}
    original_segment, original_read = recognise.segment_ink, recognise.read_segments

    def segment(ink, size, judge, splitter=None):
        seen["judge"] = judge
        return original_segment(ink, size, judge, splitter)

    def read(segments, models, is_digit=None):
        seen["models"] = models
        return original_read(segments, models, is_digit)

    recorded = {name: entry.accuracy for name, entry in read_manifest(tiny_models_dir).models.items()}
    assert recognise.recorded_accuracies(tiny_models_dir) == recorded
    # The tiny models' SVM, the first of the registry, happens to be their most accurate; here the MLP is.
    accuracies = {"svm": 0.95, "mlp": 0.99, "cnn": 0.9, "ensemble": 0.97}
    monkeypatch.setattr(recognise, "recorded_accuracies", lambda models_dir=None: accuracies)
    monkeypatch.setattr(recognise, "segment_ink", segment)
    monkeypatch.setattr(recognise, "read_segments", read)
    path, _ = number_file

    assert main(["predict", str(path), "--multi", "--json", "--models-dir", str(tiny_models_dir)]) == 0
    assert seen["judge"] is seen["models"]["mlp"]
    # The readings come in the order of the registry, as for a single digit.
    printed = [json.loads(line)["model"] for line in capsys.readouterr().out.splitlines()]
    assert printed == list(REGISTRY)


def test_models_are_ranked_by_their_recorded_test_accuracy_those_without_one_last():
    from digitlab.recognise import best_first

    models = {"svm": "S", "mlp": "M", "cnn": "C", "run": "R"}
    ranked = best_first(models, {"svm": 0.9924, "mlp": 0.9893, "cnn": 0.9967, "run": None})
    assert list(ranked.items()) == [("cnn", "C"), ("svm", "S"), ("mlp", "M"), ("run", "R")]
    assert list(best_first(models, {})) == list(models)


def test_a_damaged_split_network_stops_predict_multi_with_a_sentence(number_file, tiny_models_dir, tmp_path, capsys):
    shipped = settings.DEFAULT_MODELS_DIR
    if not (shipped / SPLITTER_RECORD).exists():
        pytest.skip("the shipped split network is not in models/")
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    record = read_splitter_record(shipped)
    shutil.copy(shipped / SPLITTER_RECORD, models / SPLITTER_RECORD)
    (models / record.artifact).write_bytes((shipped / record.artifact).read_bytes() + b"tampered")
    path, _ = number_file
    code = main(["predict", str(path), "--multi", "--model", "svm", "--models-dir", str(models)])
    error = capsys.readouterr().err
    assert code == 2
    assert "does not match its record" in error and "Traceback" not in error


def test_predict_multi_reads_the_number_in_text(number_file, capsys):
    path, number = number_file
    if not (settings.DEFAULT_MODELS_DIR / "cnn.keras").exists():
        pytest.skip("the shipped CNN is not in models/")
    assert main(["predict", str(path), "--multi", "--model", "cnn"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: cnn reads {number} (")


def test_realworld_reports_every_source_and_the_naive_baseline(tiny_models_dir, mnist_dir, capsys):
    arguments = ["realworld", "--model", "svm", "--count", "2", "--numbers", "2"]
    code = main([*arguments, "--models-dir", str(tiny_models_dir), "--data-dir", str(mnist_dir)])
    output = capsys.readouterr().out
    assert code == 0
    for source in (*SOURCES, UCI_SOURCE, STYLE_SOURCE, *NON_DIGIT_SOURCES, "overall"):
        assert f"| {source} | " in output
    assert "plain 28x28 resize" in output and "Hardest source:" in output and "read exactly right" in output


def test_realworld_records_every_models_figures_for_the_readme(tiny_models_dir, mnist_dir, tmp_path, capsys):
    folder = tmp_path / "models"
    shutil.copytree(tiny_models_dir, folder)
    arguments = ["realworld", "--model", "all", "--count", "1", "--numbers", "1", "--record", "--save", str(tmp_path)]
    assert main([*arguments, "--models-dir", str(folder), "--data-dir", str(mnist_dir)]) == 0
    captured = capsys.readouterr()
    record = json.loads((folder / "realworld.json").read_text())
    entries = read_manifest(folder).models
    assert list(record["models"]) == list(entries)
    assert record["model_sha256"] == {name: entry.sha256 for name, entry in entries.items()}
    assert record["count"] == 1 and record["numbers"] == 1 and record["seed"] == 0
    # The numbers are read as composed, scanned small and drawn on a canvas.
    assert all(
        {"exact", "small_exact", "drawn_exact"} <= set(figures["numbers"]) for figures in record["models"].values()
    )
    for name in record["models"]:
        assert f"| source | samples | {name} with digitlab preprocessing |" in captured.out
        # Each model is read on digits it never fitted on, so each keeps its own samples.
        assert len(list((tmp_path / name).rglob("*-digit[0-9]*"))) == len(SOURCES) + 2
    assert "Figures written to" in captured.err and "python -m digitlab readme" in captured.err


def test_realworld_records_only_every_model_at_once(tiny_models_dir, mnist_dir, capsys):
    arguments = ["realworld", "--model", "svm", "--record", "--models-dir", str(tiny_models_dir)]
    assert main([*arguments, "--data-dir", str(mnist_dir)]) == 2
    assert "give it with --model all" in capsys.readouterr().err
    assert not (tiny_models_dir / "realworld.json").exists()


def test_realworld_json_and_saved_samples(tiny_models_dir, mnist_dir, tmp_path, capsys):
    arguments = ["realworld", "--model", "svm", "--count", "1", "--json", "--save", str(tmp_path)]
    assert main([*arguments, "--models-dir", str(tiny_models_dir), "--data-dir", str(mnist_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    # One rendering of a held-out MNIST digit per source, one real UCI digit and one font-drawn digit, then one
    # drawing of each kind that is not a digit.
    assert report["digits"]["overall"]["samples"] == len(SOURCES) + 2
    assert len(list(tmp_path.rglob("*[0-9]-digit[0-9]*"))) == len(SOURCES) + 2
    assert len(list(tmp_path.rglob("*-not-a-digit*"))) == len(NON_DIGIT_SOURCES)
