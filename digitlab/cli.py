"""``python -m digitlab``: train, evaluate and use the models from a terminal."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from digitlab import settings  # noqa: E402
from digitlab.errors import DigitlabError  # noqa: E402
from digitlab.lab.runs import REQUEST_DEFAULTS, TRAINABLE_FAMILIES  # noqa: E402
from digitlab.models.neural import RECIPES, KerasClassifier  # noqa: E402
from digitlab.models.registry import REGISTRY  # noqa: E402

MODEL_CHOICES = [*REGISTRY, "all"]
KERAS_MODELS = [name for name, family in REGISTRY.items() if issubclass(family, KerasClassifier)]


def chosen_models(choice: str) -> list[str]:
    return list(REGISTRY) if choice == "all" else [choice]


def network_options(arguments, name: str) -> dict[str, float]:
    """``--style-share`` and ``--keep-start`` as keywords for the families that take them (the Keras networks, and
    the ensemble for its extra CNNs)."""
    accepted = REGISTRY[name]._get_param_names()
    given = {"style_share": arguments.style_share, "keep_start": arguments.keep_start}
    return {key: value for key, value in given.items() if value is not None and key in accepted}


def command_train(arguments) -> int:
    from digitlab.training import train_and_record

    if arguments.keep_start and not arguments.reuse:
        # Said before minutes of data loading and writing-style examples, not after them.
        print("error: --keep-start blends a fine-tuned network with its start, so it needs --reuse.", file=sys.stderr)
        return 2
    # The MLP and the CNN of one command learn from the same writing-style examples, made once.
    style_cache = {}
    for name in chosen_models(arguments.model):
        print(f"Training {name} (seed {arguments.seed})...", file=sys.stderr)

        def report(done, total, details, name=name):
            described = ", ".join(
                f"{key} {value:.4f}" if isinstance(value, float) else f"{key}: {value}"
                for key, value in details.items()
                if key != "learning_rate"
            )
            print(f"  {name} {done}/{total}  {described}", file=sys.stderr, flush=True)

        try:
            entry = train_and_record(
                name,
                seed=arguments.seed,
                epochs=arguments.epochs,
                train_size=arguments.train_size,
                models_dir=arguments.out,
                **network_options(arguments, name),
                data_dir=arguments.data_dir,
                progress=report,
                style_cache=style_cache,
                reuse=arguments.reuse,
            )
        except ValueError as error:
            # Settings the model refuses, or a saved part that cannot be reused: a sentence, not a traceback.
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(
            f"{name}: test accuracy {entry.metrics.accuracy:.2%} "
            f"({entry.metrics.errors} errors), trained in {entry.training_seconds:.0f} s, "
            f"saved to {Path(arguments.out or '') / entry.artifact if arguments.out else entry.artifact}"
        )
    return 0


def command_train_detector(arguments) -> int:
    from digitlab.detection import train_detector
    from digitlab.persistence import writable_models_dir

    out = writable_models_dir(arguments.out)

    def report(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    record = train_detector(data_dir=arguments.data_dir, out=out, epochs=arguments.epochs, progress=report)
    refused = ", ".join(f"{kind} {share:.1%}" for kind, share in record.non_digits_refused.items())
    print(
        f"not-a-digit detector: threshold {record.threshold:.2f}, AUROC {record.auroc:.4f} on validation; "
        f"real digits refused at most {max(record.digits_refused.values()):.2%}; non-digits refused: {refused}; "
        f"saved to {out / record.artifact}"
    )
    return 0


def command_evaluate(arguments) -> int:
    from digitlab.evaluation import evaluate_folder

    rows, differences = evaluate_folder(arguments.models_dir, arguments.data_dir, write=arguments.write)
    print(rows)
    if differences and not arguments.write:
        for line in differences:
            print(line, file=sys.stderr)
        return 1
    return 0


def command_predict(arguments) -> int:
    if arguments.multi:
        return predict_numbers(arguments)
    from digitlab.recognise import recognise_files

    def show(outcome) -> None:
        for reading in outcome.predictions:
            if arguments.json:
                print(json.dumps(outcome.reading_json(reading)))
            elif outcome.verdict is not None and not outcome.verdict.is_digit:
                print(f"{outcome.path}: {reading.model}: not a digit (closest: {reading.digit})")
            else:
                print(f"{outcome.path}: {reading.model} reads {reading.digit} ({describe_confidence(reading)})")

    outcomes = recognise_files(arguments.paths, served_models(arguments), serving_models(arguments))
    return print_outcomes(outcomes, show)


def predict_numbers(arguments) -> int:
    from digitlab.recognise import read_number_files

    def show(outcome) -> None:
        for reading in outcome.readings:
            if arguments.json:
                print(json.dumps({"path": outcome.path, **reading.to_json()}))
            elif not reading.number:
                print(f"{outcome.path}: {reading.model} finds no number: too little in the image looks like digits")
            else:
                digits = ", ".join(describe_piece(entry) for entry in reading.digits)
                print(f"{outcome.path}: {reading.model} reads {reading.number} ({digits})")

    outcomes = read_number_files(arguments.paths, served_models(arguments), serving_models(arguments))
    return print_outcomes(outcomes, show)


def serving_models(arguments):
    """--models-dir, else the models the dashboard uses: $DIGITLAB_MODELS_DIR, the promoted ones or the shipped."""
    from digitlab.lab.promotion import serving_models_dir

    return arguments.models_dir or serving_models_dir()


def served_models(arguments, folder=None) -> list[str]:
    """The chosen model, or for "all" each model the folder holds (promoted models may lack the ensemble); the
    folder is the serving one unless ``folder`` is given."""
    if arguments.model != "all":
        return [arguments.model]
    from digitlab.persistence import read_manifest

    return list(read_manifest(folder or serving_models(arguments)).models) or chosen_models("all")


def print_outcomes(outcomes, show) -> int:
    """Show each outcome, or print its error on stderr and go on; exit status 1 if any file failed."""
    failures = 0
    for outcome in outcomes:
        if outcome.error:
            failures += 1
            print(f"error: {outcome.error}", file=sys.stderr)
        else:
            show(outcome)
    return 1 if failures else 0


def describe_piece(entry) -> str:
    """``7 97.3%`` for a digit of a number, ``not a digit (closest: 1)`` for a piece left out of it."""
    if entry.not_a_digit:
        return f"not a digit (closest: {entry.digit})"
    return f"{entry.digit} {describe_confidence(entry)}"


def describe_confidence(reading) -> str:
    """``97.3%``, or ``52.0%, low confidence`` for a reading (of a digit alone or in a number) below the line."""
    note = ", low confidence" if reading.low_confidence else ""
    return f"{reading.confidence:.1%}{note}"


def command_feedback(arguments) -> int:
    from digitlab.lab.feedback import (
        ANY_MODEL,
        EXPORT_FORMATS,
        DrawingFilter,
        empty_statistics,
        open_store,
        statistics,
        statistics_text,
    )

    filters = DrawingFilter(
        labels=tuple(arguments.label or ()),
        sources=tuple(arguments.source or ()),
        misread_by=ANY_MODEL if arguments.misread_by == "any" else arguments.misread_by,
    )
    path = Path(arguments.db) if arguments.db else settings.database_path()
    # Both commands only read: a database that does not exist yet holds no drawings and is not created.
    if not path.exists():
        if arguments.feedback_command == "stats":
            report = empty_statistics(path, filters)
            print(json.dumps(report, indent=1) if arguments.json else statistics_text(report, arguments.confusion))
            return 0
        print(f"error: there are no saved drawings; {path} does not exist. Nothing was written.", file=sys.stderr)
        return 1
    with open_store(path) as store:
        if arguments.feedback_command == "stats":
            report = statistics(store, filters)
            print(json.dumps(report, indent=1) if arguments.json else statistics_text(report, arguments.confusion))
            return 0
        count = store.count(filters)
        if not count:
            print(f"error: no saved drawings in {store.path} match; nothing was written.", file=sys.stderr)
            return 1
        formats = EXPORT_FORMATS if arguments.format == "all" else (arguments.format,)
        for path in store.export(arguments.out, formats, filters):
            print(path)
    print(f"Exported {count:,} drawings.", file=sys.stderr)
    return 0


def command_realworld(arguments) -> int:
    from digitlab.checks.realworld import number_table, report_table, run_realworld, write_realworld_record
    from digitlab.persistence import resolve_models_dir, writable_models_dir

    if arguments.record:
        if arguments.model != "all":
            print(
                "error: --record writes every model's figures for the README; give it with --model all.",
                file=sys.stderr,
            )
            return 2
        # The record is of the folder the README is written from (--models-dir or the shipped models), not of
        # promoted ones, and one that cannot be written to is refused before the minutes of reading.
        folder = writable_models_dir(resolve_models_dir(arguments.models_dir))
    else:
        folder = serving_models(arguments)
    names = served_models(arguments, folder)
    print(
        f"Rendering {arguments.count} samples per source from held-out MNIST training digits, real UCI digits "
        f"and drawings (seed {arguments.seed}) and reading them with {', '.join(names)}...",
        file=sys.stderr,
    )
    settings_used = {"count": arguments.count, "numbers": arguments.numbers, "seed": arguments.seed}
    started = time.perf_counter()
    reports = {
        name: run_realworld(
            name,
            **settings_used,
            models_dir=folder,
            data_dir=arguments.data_dir,
            save_to=samples_folder(arguments.save, name, arguments.model == "all"),
        )
        for name in names
    }
    if arguments.record:
        written_to = write_realworld_record(
            reports, **settings_used, seconds=time.perf_counter() - started, models_dir=folder
        )
    if arguments.json:
        print(json.dumps(reports if arguments.model == "all" else reports[arguments.model], indent=1))
    else:
        for name, report in reports.items():
            print(report_table(report["digits"], name))
            if "numbers" in report:
                print()
                print(number_table(report["numbers"], name))
            print()
    if arguments.record:
        print(f"Figures written to {written_to}; `python -m digitlab readme` puts them in the README.", file=sys.stderr)
    if arguments.save:
        print(f"\nSamples written to {arguments.save}", file=sys.stderr)
    return 0


def samples_folder(folder: str | None, name: str, every_model: bool) -> Path | None:
    """Where ``--save`` writes one model's samples: the folder itself, or with ``--model all`` a folder per model
    (each model is read on digits it never trained on, so their samples differ)."""
    if folder is None:
        return None
    return Path(folder) / name if every_model else Path(folder)


def command_bench(arguments) -> int:
    from digitlab.checks.bench import benchmark_table, run_benchmark

    print("Benchmarking every model in a fresh process (this takes a few minutes)...", file=sys.stderr)
    results = run_benchmark(
        arguments.models_dir,
        arguments.data_dir,
        retrain=arguments.retrain,
        names=chosen_models(arguments.model) if arguments.model != "all" else None,
        reference=arguments.reference,
        reference_epochs=arguments.reference_epochs,
        train_size=arguments.train_size,
        epochs=arguments.epochs,
        latency_calls=arguments.latency_calls,
        time_to_accuracy=arguments.time_to_accuracy,
        load=arguments.load,
        robustness=arguments.robustness,
        output=arguments.output,
    )
    print(benchmark_table(results))
    print(f"\nWritten to {results['written_to']}", file=sys.stderr)
    return 0


def command_export(arguments) -> int:
    from digitlab.export import export_model
    from digitlab.models.exported import FORMAT_TITLES

    try:
        report = export_model(
            arguments.model, arguments.models_dir, arguments.data_dir, output=arguments.output, format=arguments.format
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    export_format = report["format"]
    print(
        f"Wrote {report['path']} ({FORMAT_TITLES[export_format]}, {report['size_bytes'] / 1e6:.2f} MB, "
        f"{report['export_seconds']:.1f} s): agrees with the Keras model on {report['agreement']:.2%} of the test "
        f"set, accuracy {report[f'{export_format}_accuracy']:.2%} (Keras {report['keras_accuracy']:.2%})."
    )
    return 0


def command_readme(arguments) -> int:
    from digitlab.checks.readme import update_readme

    changed = update_readme(models_dir=arguments.models_dir)
    print("README.md tables updated from the manifest." if changed else "README.md tables are already current.")
    return 0


def command_insight(arguments) -> int:
    from digitlab.insight.artefact import build_insight

    about = build_insight(
        arguments.models_dir,
        arguments.data_dir,
        per_class=arguments.neighbours,
        method=arguments.method,
        seed=arguments.seed,
        progress=lambda stage: print(f"  {stage}...", file=sys.stderr, flush=True),
    )
    steps = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in about["seconds"].items())
    print(f"Wrote the test-set map and look-alikes from {about['source_model']} ({steps}).")
    return 0


def command_robustness(arguments) -> int:
    from digitlab.checks.readme import robustness_table
    from digitlab.insight.robustness import measure_robustness, save_robustness
    from digitlab.persistence import read_manifest

    robustness = measure_robustness(
        arguments.models_dir,
        arguments.data_dir,
        test_size=arguments.test_size,
        progress=lambda stage: print(f"  {stage}...", file=sys.stderr, flush=True),
    )
    path = save_robustness(robustness, arguments.models_dir)
    print(robustness_table(robustness, read_manifest(arguments.models_dir)))
    print(f"Wrote {path}.", file=sys.stderr)
    return 0


def command_worker(arguments) -> int:
    from digitlab.lab.worker import lower_priority, run_worker

    lower_priority()
    run = run_worker(arguments.run_id, data_dir=arguments.data_dir, interrupt_on_cancel=True)
    print(f"Run #{run.id} {run.status}" + (f": {run.error}" if run.error else "."), file=sys.stderr)
    return 0 if run.status == "succeeded" else 1


def command_runs_list(arguments) -> int:
    from digitlab.lab import runs
    from digitlab.lab.promotion import describe_pointer, read_pointer

    with runs.RunRegistry() as registry:
        registry.mark_lost_runs()
        listed = registry.list_runs()
        line = [run.id for run in registry.waiting_runs()]
    for run in listed:
        row = runs.summary_row(run)
        accuracy = f"{row['accuracy']:.2%}" if row["accuracy"] is not None else "-"
        seconds = f"{row['training_seconds']:.0f} s" if row["training_seconds"] is not None else "-"
        size = f"{row['train_size']:,} images"
        place = f"  ({line.index(run.id) + 1} of {len(line)} in line)" if run.id in line else ""
        print(f"#{run.id:<4} {run.family:<4} {run.status:<10} {size:>14}  {accuracy:>7}  {seconds:>6}{place}")
    print(describe_pointer(read_pointer()), file=sys.stderr)
    return 0


def command_runs_train(arguments) -> int:
    from digitlab.lab import runs
    from digitlab.lab.worker import run_worker

    request = runs.TrainingRequest(
        family=arguments.model,
        train_size=arguments.train_size,
        epochs=arguments.epochs,
        augment=not arguments.no_augment,
        recipe=arguments.recipe,
        C=arguments.C,
        gamma=arguments.gamma,
        include_drawings=arguments.include_drawings,
        seed=arguments.seed,
    )
    with runs.RunRegistry() as registry:
        run_id = registry.create_run(request)
    print(f"Training run #{run_id}: {request.describe()}", file=sys.stderr)
    run = run_worker(run_id, data_dir=arguments.data_dir, interrupt_on_cancel=True)
    if run.status != "succeeded":
        print(f"error: run #{run.id} {run.status}: {run.error}", file=sys.stderr)
        return 1
    test = run.metrics["test"]
    print(
        f"Run #{run.id} {run.family}: test accuracy {test['accuracy']:.2%} ({test['errors']} errors), "
        f"trained in {run.training_seconds:.1f} s on {run.data['train_images']:,} images; {run.artifact}"
    )
    return 0


def command_runs_sweep(arguments) -> int:
    from digitlab.lab import runs, sweeps, worker

    family = arguments.model
    given = {name: getattr(arguments, name) for name in sweeps.SWEEPABLE}
    given = {name: values for name, values in given.items() if values is not None}
    unused = [name for name in given if name not in sweeps.sweepable_settings(family)]
    if unused:
        # Said letter by letter: "an SVM", "an MLP", "a CNN".
        article = "An" if family[0] in "aefhilmnorsx" else "A"
        options = [f"--{name.replace('_', '-')}" for name in sweeps.sweepable_settings(family)]
        raise runs.InvalidRequestError(
            f"{article} {family.upper()} run has no {' or '.join(f'--{name}' for name in unused)}; its settings to "
            f"sweep are {', '.join(options)}."
        )
    starting = runs.recipe_defaults(family, arguments.recipe) if family in runs.KERAS_FAMILIES else {}
    # A setting given one value is the same in every run; one given several is an axis of the sweep.
    fixed = {name: values[0] for name, values in given.items() if len(set(values)) == 1}
    augment = False if arguments.no_augment else starting.get("augment", REQUEST_DEFAULTS["augment"])
    base = runs.TrainingRequest(
        family, **{**starting, **fixed, "augment": augment}, recipe=arguments.recipe, seed=arguments.seed
    )
    request = sweeps.SweepRequest(base, {name: tuple(values) for name, values in given.items() if name not in fixed})
    sweep_id = worker.launch_sweep(request)
    others = runs.describe_settings({name: value for name, value in base.describe().items() if name not in given})
    if "train_size" not in request.axes:
        others = f"{base.train_size:,} images, {others}"
    print(
        f"Sweep #{sweep_id}: {request.run_count} {family.upper()} runs in line (other settings: {others}); "
        f"at most {worker.training_slots()} train at once.",
        file=sys.stderr,
    )
    if arguments.no_wait:
        print(f"'python -m digitlab runs sweeps {sweep_id}' shows how far it is.", file=sys.stderr)
        return 0
    try:
        result = follow_sweep(sweep_id)
    except KeyboardInterrupt:
        print(
            f"Stopped watching; the runs carry on in the background ('python -m digitlab runs sweeps {sweep_id}' "
            f"shows them; 'runs cancel --sweep {sweep_id}' cancels the rest).",
            file=sys.stderr,
        )
        return 130
    print(sweep_report(result))
    return 0 if len(result.succeeded) == len(result.points) else 1


def follow_sweep(sweep_id: int, poll_seconds: float = 2.0):
    """Wait for every run of a sweep to end, printing each as it does; keep the line moving meanwhile."""
    import time

    from digitlab.lab import runs, sweeps, worker

    reported: set[int] = set()
    while True:
        # A worker that died starts nothing after it, so the line is moved from here too.
        worker.start_queued_runs()
        with runs.RunRegistry() as registry:
            swept = registry.sweep_runs(sweep_id)
            result = sweeps.sweep_result(registry.get_sweep(sweep_id), swept)
        errors = {run.id: run.error for run in swept}
        for point in result.points:
            if point.status in runs.FINISHED and point.run_id not in reported:
                reported.add(point.run_id)
                values = ", ".join(
                    f"{sweeps.SWEEPABLE[name]} {sweeps.format_value(name, value)}"
                    for name, value in point.settings.items()
                )
                if point.accuracy is not None:
                    outcome = f"{point.accuracy:.2%} in {point.training_seconds:.0f} s"
                else:
                    outcome = point.status + (f": {errors[point.run_id]}" if errors[point.run_id] else "")
                counted = f"[{len(reported)}/{len(result.points)}]"
                print(f"{counted} run #{point.run_id} ({values}): {outcome}", file=sys.stderr)
        if result.finished == len(result.points):
            return result
        time.sleep(poll_seconds)


def sweep_report(result) -> str:
    """A sweep's accuracies as text: a row per value for one setting, a grid for two."""
    from digitlab.formatting import markdown_table
    from digitlab.lab import sweeps

    def accuracy(point) -> str:
        if point is None:
            return ""
        return f"{point.accuracy:.2%}" if point.accuracy is not None else point.status

    names = result.settings
    lines = [result.title()]
    if len(names) == 1:
        (name,) = names
        rows = [
            (sweeps.format_value(name, point.settings[name]), accuracy(point), seconds(point), f"#{point.run_id}")
            for point in result.points
        ]
        lines.append(markdown_table([sweeps.SWEEPABLE[name], "test accuracy", "training (s)", "run"], rows))
    else:
        first, second = names
        headers = [f"{sweeps.SWEEPABLE[second]} \\ {sweeps.SWEEPABLE[first]}"]
        headers += [sweeps.format_value(first, value) for value in result.sweep.axes[first]]
        rows = [
            [sweeps.format_value(second, value), *(accuracy(point) for point in row)]
            for value, row in zip(result.sweep.axes[second], result.grid(), strict=True)
        ]
        lines.append(markdown_table(headers, rows))
    best = result.best()
    if best is not None:
        lines.append(f"Highest test accuracy: run #{best.run_id}, {best.accuracy:.2%}.")
    return "\n".join(lines)


def seconds(point) -> str:
    return f"{point.training_seconds:.1f}" if point.training_seconds is not None else "-"


def command_runs_sweeps(arguments) -> int:
    from digitlab.lab import runs, sweeps

    with runs.RunRegistry() as registry:
        registry.mark_lost_runs()
        if arguments.sweep_id is not None:
            record = registry.get_sweep(arguments.sweep_id)
            print(sweep_report(sweeps.sweep_result(record, registry.sweep_runs(record.id))))
            return 0
        recorded = [sweeps.sweep_result(record, registry.sweep_runs(record.id)) for record in registry.list_sweeps()]
    if not recorded:
        print("No sweeps yet: 'python -m digitlab runs sweep --help' says how to start one.", file=sys.stderr)
    for result in recorded:
        print(result.title())
    return 0


def command_runs_promote(arguments) -> int:
    from digitlab.lab.promotion import describe_pointer, promote_run

    print(describe_pointer(promote_run(arguments.run_id)))
    return 0


def command_runs_cancel(arguments) -> int:
    from digitlab.lab import runs

    if (arguments.run_id is None) == (arguments.sweep is None):
        given = "both" if arguments.sweep is not None else "neither"
        print(f"Name one run to cancel, or one sweep with --sweep; you gave {given}.", file=sys.stderr)
        return 2
    if arguments.sweep is not None:
        return cancel_sweep(arguments.sweep)
    with runs.RunRegistry() as registry:
        status = registry.get_run(arguments.run_id).status
        waiting = arguments.run_id in {run.id for run in registry.waiting_runs()}
        if not registry.request_cancel(arguments.run_id):
            print(f"Run #{arguments.run_id} has already ended ({status}); there is nothing to cancel.", file=sys.stderr)
            return 1
    if waiting:
        print(f"Run #{arguments.run_id} was cancelled while it waited in line; it never started.")
    else:
        print(f"Run #{arguments.run_id} was asked to stop; its worker stops within a second or so.")
    return 0


def cancel_sweep(sweep_id: int) -> int:
    from digitlab.lab import runs

    with runs.RunRegistry() as registry:
        cancelled = registry.cancel_sweep(sweep_id)
    if not cancelled:
        print(f"Every run of sweep #{sweep_id} has already ended; there is nothing to cancel.", file=sys.stderr)
        return 1
    print(
        f"Sweep #{sweep_id}: {cancelled} unfinished {'run was' if cancelled == 1 else 'runs were'} cancelled "
        "(those in line never start; a training one stops within a second or so)."
    )
    return 0


def command_runs_rollback(arguments) -> int:
    from digitlab.lab.promotion import describe_pointer, rollback

    print(describe_pointer(rollback()))
    return 0


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to below 1, not {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# What --models-dir falls back to: the models in use (those predict and the dashboard read) or the models folder
# itself, which commands that measure or rewrite the shipped artefacts work on.
MODELS_DIR_HELP = {
    "served": "models folder (default: $DIGITLAB_MODELS_DIR, else the promoted models, else the shipped models/)",
    "shipped": "models folder (default: $DIGITLAB_MODELS_DIR, else the shipped models/)",
}


def add_folder_options(parser: argparse.ArgumentParser, *, models: str | None, data: bool) -> None:
    """The --models-dir and --data-dir options, worded the same for every subcommand."""
    if models:
        parser.add_argument("--models-dir", help=MODELS_DIR_HELP[models])
    if data:
        parser.add_argument("--data-dir", help="MNIST folder (default: $DIGITLAB_DATA_DIR or the user cache)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m digitlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train models on the MNIST training set")
    train.add_argument("--model", choices=MODEL_CHOICES, default="all")
    train.add_argument("--epochs", type=int, help="epochs for the Keras models (default: each model's own)")
    train.add_argument("--train-size", type=int, help="train on a random subset of this many images")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--style-share",
        type=non_negative_float,
        help="also learn from this many writing-style examples per training image for the MLP, the CNN and the "
        "ensemble's extra CNNs "
        "(scans, forms, drawings and photos made from training digits, font digits, elastic distortions; "
        "default 0, as the shipped models; try 0.2)",
    )
    train.add_argument(
        "--reuse",
        action="store_true",
        help="keep what a saved model of the same settings can lend and fit only the rest: the SVM keeps its "
        "fitted SVM and calibrates it again, the ensemble keeps its extra CNNs (fine-tunes them as the CNN with "
        "--style-share or --keep-start) and chooses its weights again, "
        "the MLP and the CNN start from their saved networks and fine-tune them "
        f"({KerasClassifier.reuse_settings['epochs']} epochs at a peak learning rate of "
        f"{KerasClassifier.reuse_settings['learning_rate']:g} unless --epochs says otherwise)",
    )
    train.add_argument(
        "--keep-start",
        type=share,
        help="with --reuse, blend each fine-tuned weight of the MLP, the CNN or the ensemble's extra CNNs with the "
        "starting network's, keeping "
        "this share of the start (WiSE-FT; default 0)",
    )
    train.add_argument("--out", help="models folder to write (default: the shipped models/)")
    add_folder_options(train, models=None, data=True)
    train.set_defaults(handler=command_train)

    detector = commands.add_parser(
        "train-detector", help="train the not-a-digit detector on MNIST and drawn letters, symbols and doodles"
    )
    detector.add_argument("--epochs", type=positive_int, default=10)
    detector.add_argument("--out", help="models folder to write (default: the shipped models/)")
    add_folder_options(detector, models=None, data=True)
    detector.set_defaults(handler=command_train_detector)

    evaluate = commands.add_parser("evaluate", help="recompute every metric from the saved models")
    add_folder_options(evaluate, models="shipped", data=True)
    evaluate.add_argument("--write", action="store_true", help="store the recomputed figures in the manifest")
    evaluate.set_defaults(handler=command_evaluate)

    predict = commands.add_parser("predict", help="recognise the digit in image files")
    predict.add_argument("paths", nargs="+", metavar="PATH")
    predict.add_argument("--model", choices=MODEL_CHOICES, default="all")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    add_folder_options(predict, models="served", data=False)
    predict.add_argument(
        "--multi", action="store_true", help="read a whole number: split each image into its digits, left to right"
    )
    predict.set_defaults(handler=command_predict)

    realworld = commands.add_parser(
        "realworld",
        help="accuracy on scans, forms, drawings and photos rendered from held-out MNIST training digits, on real "
        "handwriting (the UCI digits) and on drawings that are not digits",
    )
    realworld.add_argument("--model", choices=MODEL_CHOICES, default="cnn")
    realworld.add_argument("--count", type=positive_int, default=250, help="samples per source (default: 250)")
    realworld.add_argument(
        "--numbers", type=int, default=0, help="also read this many composed 4-digit numbers (default: none)"
    )
    realworld.add_argument("--seed", type=int, default=0)
    realworld.add_argument("--save", metavar="DIR", help="also write every sample as an image file into DIR")
    realworld.add_argument("--json", action="store_true", help="the full report as JSON")
    realworld.add_argument(
        "--record",
        action="store_true",
        help="with --model all: write every model's figures into the models folder's realworld.json, for the README",
    )
    add_folder_options(realworld, models="served", data=True)
    realworld.set_defaults(handler=command_realworld)

    feedback = commands.add_parser("feedback", help="the drawings saved from the dashboard: statistics and export")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    stats = feedback_commands.add_parser("stats", help="drawings per digit and each model's accuracy on them")
    stats.add_argument("--json", action="store_true", help="the figures, with confusion matrices, as JSON")
    stats.add_argument("--confusion", action="store_true", help="also print each model's confusion matrix")
    export_feedback = feedback_commands.add_parser("export", help="write the drawings as MNIST IDX files and a CSV")
    export_feedback.add_argument("--out", required=True, metavar="DIR", help="folder to write the files into")
    export_feedback.add_argument("--format", choices=["idx", "csv", "all"], default="all")
    for command in (stats, export_feedback):
        command.add_argument(
            "--db", help="database file (default: $DIGITLAB_DB or digitlab.sqlite3 in the user data folder)"
        )
        command.add_argument(
            "--label", type=int, choices=range(10), action="append", help="only this digit (repeatable)"
        )
        command.add_argument(
            "--source", choices=["drawn", "uploaded"], action="append", help="only drawn or uploaded ones"
        )
        command.add_argument("--misread-by", metavar="MODEL", help="only drawings this model (or 'any' model) misread")
    feedback.set_defaults(handler=command_feedback)

    bench = commands.add_parser("bench", help="measure accuracy, speed, memory and size; write benchmark.json")
    add_folder_options(bench, models="shipped", data=True)
    bench.add_argument(
        "--model", choices=MODEL_CHOICES, default="all", help="measure only this model (use with --output)"
    )
    bench.add_argument("--retrain", action="store_true", help="re-measure training time by training again")
    bench.add_argument("--reference", action="store_true", help="also train Keras' simple MNIST convnet")
    bench.add_argument("--reference-epochs", type=int, default=15)
    bench.add_argument("--train-size", type=int, help="training images for --retrain and --reference")
    bench.add_argument("--epochs", type=int, help="epochs for --retrain of the Keras models")
    bench.add_argument("--latency-calls", type=int, default=300, help="single-image calls per latency figure")
    bench.add_argument(
        "--time-to-accuracy",
        action="store_true",
        help="also train the quick MLP and CNN and Keras' examples, and record test accuracy against training "
        "seconds (about 8 minutes)",
    )
    bench.add_argument(
        "--load",
        action="store_true",
        help="also time readings by 30 simulated users of the Draw page while two runs train (about 2 minutes)",
    )
    bench.add_argument(
        "--robustness",
        action="store_true",
        help="also time the whole measurement of 'python -m digitlab robustness' (about 7 minutes; writes no "
        "robustness.json)",
    )
    bench.add_argument("--output", help="where to write the JSON (default: benchmark.json in the models folder)")
    bench.set_defaults(handler=command_bench)

    export = commands.add_parser("export", help="export a Keras model to TensorFlow Lite or ONNX with a parity check")
    export.add_argument("--model", choices=KERAS_MODELS, required=True)
    export.add_argument("--format", choices=["tflite", "onnx"], default="tflite")
    add_folder_options(export, models="shipped", data=True)
    export.add_argument("--output", help="file to write (default: <models folder>/<model>.<format>)")
    export.set_defaults(handler=command_export)

    insight = commands.add_parser(
        "insight", help="compute the test-set map and each test image's nearest training images (models/insight.npz)"
    )
    insight.add_argument("--method", choices=["tsne", "pca"], default="tsne", help="how the map is made")
    insight.add_argument(
        "--neighbours", type=positive_int, default=6, help="training look-alikes per digit (default: 6)"
    )
    insight.add_argument("--seed", type=int, default=0)
    add_folder_options(insight, models="shipped", data=True)
    insight.set_defaults(handler=command_insight)

    robustness = commands.add_parser(
        "robustness",
        help="accuracy of every model under 12 corruptions and under PGD attacks (models/robustness.json)",
    )
    robustness.add_argument(
        "--test-size", type=positive_int, default=None, help="use only the first N test images (default: all)"
    )
    add_folder_options(robustness, models="shipped", data=True)
    robustness.set_defaults(handler=command_robustness)

    worker = commands.add_parser("worker", help="train a queued run of the registry (the dashboard starts this)")
    worker.add_argument("run_id", type=int)
    add_folder_options(worker, models=None, data=True)
    worker.set_defaults(handler=command_worker)

    runs = commands.add_parser("runs", help="training runs: list, train, promote, roll back")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)
    runs_list = runs_commands.add_parser("list", help="every recorded run, newest first, and the models in use")
    runs_train = runs_commands.add_parser("train", help="train one run in the foreground and record it")
    runs_train.add_argument("--model", choices=TRAINABLE_FAMILIES, required=True)
    defaults = REQUEST_DEFAULTS
    runs_train.add_argument("--train-size", type=positive_int, default=defaults["train_size"])
    runs_train.add_argument(
        "--epochs",
        type=positive_int,
        default=defaults["epochs"],
        help=f"epochs for the neural networks (default: {defaults['epochs']})",
    )
    runs_train.add_argument("--no-augment", action="store_true", help="no augmentation (or SVM shifted copies)")
    runs_train.add_argument(
        "--recipe",
        choices=RECIPES,
        default=defaults["recipe"],
        help="the neural networks' training recipe: 'quick' trains a smaller network in seconds, 'full' is the "
        f"shipped models' recipe (default: {defaults['recipe']})",
    )
    runs_train.add_argument("--C", type=float, default=defaults["C"], help=f"the SVM's C (default: {defaults['C']:g})")
    runs_train.add_argument(
        "--gamma", type=float, default=defaults["gamma"], help=f"the SVM's RBF gamma (default: {defaults['gamma']:g})"
    )
    runs_train.add_argument("--include-drawings", action="store_true", help="also train on the saved drawings")
    runs_train.add_argument("--seed", type=int, default=defaults["seed"])
    add_folder_options(runs_train, models=None, data=True)
    add_sweep_parser(runs_commands)
    runs_sweeps = runs_commands.add_parser("sweeps", help="list the sweeps, or show one sweep's results")
    runs_sweeps.add_argument("sweep_id", type=int, nargs="?", help="the sweep to show (default: list them all)")
    runs_sweeps.set_defaults(handler=command_runs_sweeps)
    runs_promote = runs_commands.add_parser("promote", help="make a run's model the one the dashboard and predict use")
    runs_promote.add_argument("run_id", type=int)
    runs_rollback = runs_commands.add_parser("rollback", help="return to the models in use before the last promotion")
    runs_cancel = runs_commands.add_parser("cancel", help="take a run out of the line, or ask a training run to stop")
    runs_cancel.add_argument("run_id", type=int, nargs="?")
    runs_cancel.add_argument("--sweep", type=int, metavar="SWEEP", help="cancel every unfinished run of this sweep")
    runs_cancel.set_defaults(handler=command_runs_cancel)
    runs_list.set_defaults(handler=command_runs_list)
    runs_train.set_defaults(handler=command_runs_train)
    runs_promote.set_defaults(handler=command_runs_promote)
    runs_rollback.set_defaults(handler=command_runs_rollback)

    readme = commands.add_parser("readme", help="rewrite README.md's score tables from the manifest and benchmark")
    add_folder_options(readme, models="shipped", data=False)
    readme.set_defaults(handler=command_readme)
    return parser


def add_sweep_parser(runs_commands) -> None:
    from digitlab.lab.sweeps import MAX_SWEEP_RUNS

    sweep = runs_commands.add_parser(
        "sweep",
        help="queue runs that differ in one or two settings and wait for their learning curve or grid",
        description="Give several values for one or two settings; every combination is one run, queued in the "
        f"background like the Train page's runs (at most {MAX_SWEEP_RUNS}). Example: 'runs sweep --model svm "
        "--train-size 2000 --C 1 10 100 --gamma 0.01 0.02 0.05 --no-augment'.",
    )
    sweep.add_argument("--model", choices=TRAINABLE_FAMILIES, required=True)
    sweep.add_argument("--train-size", dest="train_size", type=positive_int, nargs="+", metavar="N")
    sweep.add_argument("--epochs", type=positive_int, nargs="+", metavar="N", help="the neural networks' epochs")
    sweep.add_argument("--C", type=float, nargs="+", metavar="C", help="the SVM's C")
    sweep.add_argument("--gamma", type=float, nargs="+", metavar="GAMMA", help="the SVM's RBF gamma")
    sweep.add_argument(
        "--recipe", choices=RECIPES, default="quick", help="the neural networks' training recipe (default: quick)"
    )
    sweep.add_argument("--no-augment", action="store_true", help="no augmentation (or SVM shifted copies)")
    sweep.add_argument("--seed", type=int, default=REQUEST_DEFAULTS["seed"])
    sweep.add_argument("--no-wait", action="store_true", help="queue the runs and return at once")
    sweep.set_defaults(handler=command_runs_sweep)


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.handler(arguments)
    except DigitlabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
