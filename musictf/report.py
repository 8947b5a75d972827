"""Run directories -> reports/: figures (PNG for the page, PDF for papers), tables (Markdown and
LaTeX booktabs) and one self-contained `reports/index.html` with images and audio embedded.

`build_report()` with no runs takes the latest finished run of each experiment and preset under
runs/, plus every search under runs/tune/.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import sys
import time
from pathlib import Path

from musictf import benchmarks, files, plots, realism, rundir
from musictf.data.audio import fluidsynth_available, render_midi
from musictf.errors import MusicTFError
from musictf.quality import HEADLINE_METRICS, QUALITY_KEYS, closer_statistics, verdict
from musictf.run import open_run
from musictf.samples import read_listing

# The comparison table's columns: (where in metrics.json, key, label). "baseline" holds the count
# baselines of the same run, scored on the same test targets.
COMPARISON_COLUMNS = (
    ("test", "cross_entropy_nats", "CE (nats)"),
    ("test", "perplexity", "perplexity"),
    ("test", "accuracy", "accuracy"),
    ("test", "frame_nll_nats", "frame NLL (nats)"),
    ("test", "nll_nats_per_quarter", "NLL per quarter (nats)"),
    ("test", "f1", "F1"),
    ("test", "bay_accuracy", "Bay acc."),
    ("test", "nll_bits_per_sample", "NLL (bits/sample)"),
    ("baseline", "unigram_cross_entropy_nats", "unigram CE"),
    ("baseline", "bigram_cross_entropy_nats", "bigram CE"),
    ("baseline", "independent_bernoulli_nll_nats", "independent NLL"),
    ("baseline", "markov_nll_nats", "Markov NLL"),
    ("baseline", "ngram_nll_nats", "N-gram NLL"),
    ("baseline", "unigram_nll_bits_per_sample", "unigram (bits)"),
)
COMPARISON_HEADER = ["experiment", "preset", "data hash", *[label for _, _, label in COMPARISON_COLUMNS]]


def latest_runs(root: Path = rundir.RUNS_ROOT) -> list[Path]:
    """The newest evaluated run of each experiment and preset (a run whose config.json cannot be
    read is passed over, with a line saying so)."""
    newest: dict[tuple[str, str], Path] = {}
    for metrics_file in sorted(Path(root).glob("e*_*/*/metrics.json")):
        run_dir = metrics_file.parent
        try:
            preset = rundir.read_config_file(run_dir)["preset"]  # not the folder name: it may end in -2
            read_metrics(run_dir)  # a damaged one leaves the next-newest run of its preset in its place
        except MusicTFError as error:
            print(f"musictf: passed over: {error}", file=sys.stderr)
            continue
        key = (run_dir.parent.name, preset)
        if key not in newest or run_dir.name > newest[key].name:
            newest[key] = run_dir
    return [newest[key] for key in sorted(newest)]


def read_metrics(run_dir: Path) -> dict:
    return rundir.read_json(
        run_dir / "metrics.json",
        f"run `musictf evaluate {run_dir}` to write it again",
        required=("data_hash", "test", "baseline", "samples", "test_split_statistics"),
    )


def _read_history(path: Path) -> dict[str, list[float]]:
    """A run's learning curves; the rows before a torn one, with a line saying what was left out."""
    rows, problem = rundir.read_history(path)
    if problem:
        print(
            f"musictf: warning: {path}: {problem}; the learning curve shows the {len(rows)} whole rows "
            "before it",
            file=sys.stderr,
        )
    return rundir.history_columns(rows)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_format(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def latex_table(header: list[str], rows: list[list], caption: str) -> str:
    def escape(text: str) -> str:
        return str(text).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&").replace("#", r"\#")

    spec = "l" * 3 + "r" * (len(header) - 3)
    body = "\n".join("    " + " & ".join(escape(_format(cell)) for cell in row) + r" \\" for row in rows)
    return (
        "% needs \\usepackage{booktabs}\n\\begin{table}[t]\n  \\centering\n  \\small\n"
        f"  \\begin{{tabular}}{{{spec}}}\n    \\toprule\n    "
        + " & ".join(escape(h) for h in header)
        + r" \\"
        + "\n"
        f"    \\midrule\n{body}\n    \\bottomrule\n  \\end{{tabular}}\n  "
        f"\\caption{{{escape(caption)}}}\n\\end{{table}}\n"
    )


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


ABLATION_HEADER = [
    "step",
    "test frame NLL",
    "Markov NLL",
    "F1",
    "threshold",
    "notes per quarter",
    "mean note length",
    "polyphony",
    "closer than Markov samples",
]


def ablation_section(path: Path, tables: Path, figures: Path) -> str:
    """An ablation's table (Markdown, LaTeX) and figure, and its HTML."""
    ablation = files.read_json(path)
    steps = ablation["steps"]
    split = steps[0]["test_split_statistics"]
    rows = [
        [
            f"{row['step']}. {row['name']}",
            row["frame_nll_nats"],
            row["markov_nll_nats"],
            row["f1"],
            row.get("threshold", "–"),
            row["samples"]["note_density_per_quarter"],
            row["samples"]["mean_note_quarters"],
            row["samples"]["polyphony"],
            f"{row.get('closer_than_baseline', '–')} of {len(ablation['statistics'])}",
        ]
        for row in steps
    ]
    rows.append(
        [
            "test split",
            "–",
            "–",
            "–",
            "–",
            split["note_density_per_quarter"],
            split["mean_note_quarters"],
            split["polyphony"],
            "–",
        ]
    )
    stem = f"ablation-{ablation['experiment']}-{ablation['preset']}"
    files.write_text(tables / f"{stem}.md", markdown_table(ABLATION_HEADER, rows))
    files.write_text(
        tables / f"{stem}.tex", latex_table(ABLATION_HEADER, rows, f"Ablation of {ablation['experiment']}")
    )
    png, _ = plots.save_ablation(
        steps, figures / stem, f"{ablation['experiment']} ({ablation['preset']}): ablation"
    )
    return (
        f"<h3>{html.escape(ablation['experiment'])} "
        f"({html.escape(ablation['preset'])})</h3>{_html_table(ABLATION_HEADER, rows)}"
        f'<img src="{_data_uri(png, "image/png")}" alt="ablation of {html.escape(ablation["experiment"])}">'
    )


def build_report(
    run_dirs: list[Path] | None = None,
    out_dir: Path = rundir.REPORTS_ROOT,
    tune_root: Path = rundir.RUNS_ROOT / "tune",
    ablation_root: Path = rundir.RUNS_ROOT / "ablation",
) -> Path:
    started = time.perf_counter()
    run_dirs = [Path(p) for p in run_dirs] if run_dirs else latest_runs()
    ablation_files = sorted(Path(ablation_root).glob("*/ablation.json"))
    if not run_dirs and not ablation_files:
        raise MusicTFError("no evaluated runs found under runs/; run `make experiment-N` first")
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise MusicTFError(f"{run_dir}: no such run directory")
        if not (run_dir / "metrics.json").exists():
            raise MusicTFError(f"{run_dir}: no metrics.json; run `musictf evaluate {run_dir}` first")
    figures, tables, audio = out_dir / "figures", out_dir / "tables", out_dir / "audio"
    with rundir.lock(out_dir, "building a report"):
        # the temp files of a report that was killed (the lock keeps any other report out)
        files.remove_stale_temporaries(out_dir, older_than=0, exclude=(out_dir / rundir.LOCK_NAME,))
        return _build_report(run_dirs, out_dir, figures, tables, audio, tune_root, ablation_files, started)


QUALITY_HEADER = ["run", "pieces", *QUALITY_KEYS]


@dataclasses.dataclass
class RunPart:
    """What one run gives the report: its own section and its rows of the shared tables."""

    html: str
    comparison: list
    quality: list[list]
    statistics: tuple | None
    realism: tuple[str, dict] | None
    benchmark: object | None


def _build_report(run_dirs, out_dir, figures, tables, audio, tune_root, ablation_files, started) -> Path:
    renderer = "FluidSynth" if fluidsynth_available() else "the numpy synth (FluidSynth was not found)"
    parts, passed_over = [], []
    for run_dir in run_dirs:
        try:
            parts.append(run_section(run_dir, figures, audio))
        except MusicTFError as error:  # one damaged run is named and left out; the rest is reported
            print(f"musictf: passed over: {error}", file=sys.stderr)
            passed_over.append(error)
    if passed_over and len(passed_over) == len(run_dirs) and not ablation_files:
        raise MusicTFError(f"no run could be reported: {passed_over[-1]}")
    introduction = (
        f"<p>Generated {time.strftime('%Y-%m-%d %H:%M')} from {len(parts)} runs. Audio rendered with "
        f"{html.escape(renderer)}. Everything is embedded in this file; PDFs of the figures are in "
        "<code>figures/</code>, LaTeX tables in <code>tables/</code>.</p>"
    )
    sections = [
        ("Test metrics (common protocol)", comparison_section([part.comparison for part in parts], tables)),
        (
            "Polyphonic benchmarks: musictf beside the published tables",
            benchmark_section(parts, tables, figures),
        ),
        ("Sample quality against the test split", quality_section(parts, tables, figures)),
        (None, "".join(part.html for part in parts)),
        (
            "Ablations",
            "".join(ablation_section(path, tables, figures) for path in ablation_files)
            or "<p>No ablations under runs/ablation/ yet (make ablation-4).</p>",
        ),
        (
            "Hyperparameter searches",
            tuning_section(tune_root, figures) or "<p>No searches under runs/tune/ yet (make tune-N).</p>",
        ),
        (
            "Scaling with the corpus",
            scaling_section(out_dir / "bench.json", figures)
            or "<p>No scaling figure in bench.json yet (make bench).</p>",
        ),
    ]
    index = out_dir / "index.html"
    files.write_text(index, _page("musictf report", introduction, sections))
    print(f"report: {index} ({len(run_dirs)} runs, {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return index


def run_section(run_dir: Path, figures: Path, audio: Path) -> RunPart:
    """One run's section (its metrics, verdicts, learning curves and first sample) and its rows of the
    comparison, sample-quality, realism and benchmark tables."""
    run, metrics = open_run(run_dir), read_metrics(run_dir)
    label = f"{run.experiment.slug} ({run.preset})"
    stem = f"{run.experiment.slug}-{run.preset}"
    comparison = [
        run.experiment.slug,
        run.preset,
        metrics["data_hash"],
        *[metrics[where].get(key, "–") for where, key, _ in COMPARISON_COLUMNS],
    ]
    quality, statistics = [], None
    if all(column in metrics["samples"] for column in QUALITY_KEYS):  # symbolic samples
        drawn = metrics.get("baseline_samples")
        quality = [
            [label, "samples", *[metrics["samples"][c] for c in QUALITY_KEYS]],
            [label, "test split", *[metrics["test_split_statistics"][c] for c in QUALITY_KEYS]],
        ]
        if drawn and all(column in drawn for column in QUALITY_KEYS):
            quality.append([label, "baseline samples", *[drawn[c] for c in QUALITY_KEYS]])
        statistics = (label, metrics["samples"], metrics["test_split_statistics"], drawn)
    realism_row = (label, metrics["set_level"]) if metrics.get("set_level", {}).get("c2st") else None
    return RunPart(
        html=_run_html(run_dir, metrics, label, stem, figures, audio),
        comparison=comparison,
        quality=quality,
        statistics=statistics,
        realism=realism_row,
        benchmark=benchmarks.benchmark_entry(label, metrics, run_dir),
    )


def _run_html(run_dir: Path, metrics: dict, label: str, stem: str, figures: Path, audio: Path) -> str:
    test = metrics["test"]
    summary = ", ".join(f"{name} {_format(test[name])}" for name in HEADLINE_METRICS if name in test)
    parts = [f"<h2>{html.escape(label)}</h2>", f"<p>Test metrics: {summary}</p>"]
    judged = verdict(test, metrics["baseline"])
    if judged:
        parts.append(f"<p><b>Against its strongest baseline:</b> {html.escape(judged)}</p>")
    passed = realism.summary(metrics.get("set_level", {}))
    if passed:
        parts.append(f"<p><b>Against the music:</b> {html.escape(passed)}</p>")
    history = _read_history(run_dir / "history.csv")
    if history:
        png, _ = plots.save_learning_curves(history, figures / f"{stem}-curves", f"{label}: learning curves")
        parts.append(
            f'<img src="{_data_uri(png, "image/png")}" alt="learning curves of {html.escape(label)}">'
        )
    listing = read_listing(run_dir / "samples") if (run_dir / "samples" / "samples.json").exists() else {}
    samples = listing.get("samples", [])
    if samples and "wav" in samples[0]:
        parts += _audio_sample_html(run_dir, metrics, samples[0], stem, figures)
    elif samples:
        parts += _midi_sample_html(run_dir, listing, samples[0], stem, figures, audio)
    return "\n".join(parts)


def _audio_sample_html(run_dir: Path, metrics: dict, first: dict, stem: str, figures: Path) -> list[str]:
    """Generated audio: its waveform and spectrogram beside the roll it was conditioned on, playable."""
    samples_dir = run_dir / "samples"
    parts = [
        '<div class="pair">'
        f'<img src="{_data_uri(samples_dir / first["png"], "image/png")}" alt="waveform and spectrogram">'
    ]
    files.write_bytes(figures / f"{stem}-sample.png", (samples_dir / first["png"]).read_bytes())
    if "roll_png" in first:  # the roll it was conditioned on, beside it
        roll_png = figures / f"{stem}-roll.png"
        files.write_bytes(roll_png, (samples_dir / first["roll_png"]).read_bytes())
        parts.append(f'<img src="{_data_uri(roll_png, "image/png")}" alt="the conditioning roll">')
    parts.append("</div>")
    followed = realism.audio_summary(metrics.get("set_level", {}))
    if followed:
        parts.append(f"<p>{html.escape(followed)}</p>")
    plain = ", ".join(f"{k} {_format(v)}" for k, v in metrics["samples"].items())
    parts.append(
        f"<p>Generated audio ({html.escape(first['program'])}, roll of "
        f"{html.escape(first['roll'])}): {html.escape(plain)}</p>"
        f'<audio controls src="{_data_uri(samples_dir / first["wav"], "audio/wav")}"></audio>'
    )
    return parts


def _midi_sample_html(
    run_dir: Path, listing: dict, first: dict, stem: str, figures: Path, audio: Path
) -> list[str]:
    """Generated MIDI: its piano roll beside a real excerpt of the run's own split, rendered to audio."""
    samples_dir = run_dir / "samples"
    sample_png = figures / f"{stem}-sample.png"
    files.write_bytes(sample_png, (samples_dir / first["png"]).read_bytes())
    parts = ['<div class="pair">', f'<img src="{_data_uri(sample_png, "image/png")}" alt="generated sample">']
    if "real_excerpt" in listing:
        real = figures / f"{stem}-real.png"
        files.write_bytes(real, (samples_dir / listing["real_excerpt"]).read_bytes())
        parts.append(f'<img src="{_data_uri(real, "image/png")}" alt="real excerpt">')
    parts.append("</div>")
    wav = audio / f"{stem}-sample_1.wav"
    used = render_midi(samples_dir / first["primed_midi"], wav)
    parts.append(
        f"<p>Sample 1 with its primer, rendered with {html.escape(used)}:</p>"
        f'<audio controls src="{_data_uri(wav, "audio/wav")}"></audio>'
    )
    return parts


def comparison_section(rows: list[list], tables: Path) -> str:
    """The test metrics of every run beside its baselines: tables/comparison.md and .tex."""
    files.write_text(tables / "comparison.md", markdown_table(COMPARISON_HEADER, rows))
    files.write_text(
        tables / "comparison.tex",
        latex_table(COMPARISON_HEADER, rows, "Test-set metrics under the common protocol"),
    )
    return _html_table(COMPARISON_HEADER, rows)


def benchmark_section(parts: list[RunPart], tables: Path, figures: Path) -> str:
    """The polyphonic benchmark table (tables/benchmark.md and .tex) and its learning curves."""
    entries = [part.benchmark for part in parts if part.benchmark is not None]
    rows = benchmarks.benchmark_table(entries)
    files.write_text(tables / "benchmark.md", markdown_table(benchmarks.HEADER, rows))
    files.write_text(
        tables / "benchmark.tex",
        latex_table(benchmarks.HEADER, rows, "Test NLL on the polyphonic benchmarks (nats per frame)"),
    )
    figure = ""
    if entries:
        published = {entry.dataset: benchmarks.best_published(entry.dataset) for entry in entries}
        png, _ = plots.save_benchmark_curves(
            entries, benchmarks.best_of_each_family(entries), published, figures / "benchmark-curves"
        )
        figure = (
            f'<img src="{_data_uri(png, "image/png")}" alt="validation NLL per epoch of each benchmark run">'
        )
    return BENCHMARK_INTRODUCTION + _html_table(benchmarks.HEADER, rows) + figure


BENCHMARK_INTRODUCTION = """<p>
One block per data set: musictf's best run of each family (within-frame conditioning, or the 88
keys independent as the published LSTM, GRU and TCN), chosen by its validation NLL; the two count
baselines on the same test frames; the published rows, each with its citation. Test NLL in nats per
frame, summed over the 88 keys, every frame of every test sequence scored from its first. "test −
Markov" below zero is a model that beats its first-order Markov baseline; above zero, it has not
learned yet. A musictf row says which split it used: the file's own (canonical), or music21's chorales
with our file-level split, whose numbers are not comparable with the published ones.</p>
"""

QUALITY_INTRODUCTION = """<p>
Each run's samples beside the test split and beside continuations of the same primers drawn from
the run's strongest count baseline (first-order Markov per flag for rolls, interpolated bigram for
tokens). Samples nearer the test split than the baseline's are the result.</p>
"""


def quality_section(parts: list[RunPart], tables: Path, figures: Path) -> str:
    """The sample statistics (tables/sample_quality.md and .tex, a figure) and the set-level tests."""
    rows = [row for part in parts for row in part.quality]
    files.write_text(tables / "sample_quality.md", markdown_table(QUALITY_HEADER, rows))
    files.write_text(
        tables / "sample_quality.tex",
        latex_table(QUALITY_HEADER, rows, "Sample quality against the test split"),
    )
    statistics = [part.statistics for part in parts if part.statistics is not None]
    figure = ""
    if statistics:
        png, _ = plots.save_sample_statistics(
            statistics,
            QUALITY_KEYS,
            figures / "sample-statistics",
            "sample statistics over the test split's (1 = like the music)",
        )
        figure = (
            f'<img src="{_data_uri(png, "image/png")}" alt="sample statistics of each run and '
            f'its baseline, relative to the test split">'
        )
    realism_rows = [part.realism for part in parts if part.realism is not None]
    return (
        QUALITY_INTRODUCTION
        + _html_table(QUALITY_HEADER, rows)
        + figure
        + realism_section(realism_rows, tables, figures)
    )


def tuning_section(tune_root: Path, figures: Path) -> str:
    """Each search under `tune_root`: its best trials and a figure of hyperparameters against the
    objective ("" without any)."""
    tuning = []
    for results in sorted(Path(tune_root).glob("*/results.csv")):
        try:
            search, rows = _read_search(results)
        except MusicTFError as error:
            print(f"musictf: passed over: {error}", file=sys.stderr)
            continue
        names = list(search["space"])
        png, _ = plots.save_hyperparameter_plots(
            rows,
            names,
            search["objective"],
            figures / f"tune-{results.parent.name}",
            f"{search['experiment']}: {search['tuner']} search",
        )
        top = [[row["trial"], row["score"], *[row[name] for name in names]] for row in rows[:10]]
        tuning.append(
            f"<h3>{html.escape(results.parent.name)}</h3>{_html_table(['trial', 'score', *names], top)}"
            f'<img src="{_data_uri(png, "image/png")}" alt="hyperparameters against the objective">'
        )
    return "".join(tuning)


def console_summary(result: dict) -> str:
    """What `musictf run` and `musictf evaluate` print of a result: the test metrics, the baselines,
    the verdicts against the strongest baseline and against the music, the sample statistics."""
    lines = []
    test = result["test"]
    shown = ", ".join(f"{key} {test[key]:.4g}" for key in HEADLINE_METRICS if key in test)
    lines.append(f"test ({result['split']} split): {shown}")
    lines.append(
        "baselines on the same targets: " + ", ".join(f"{k} {v:.4g}" for k, v in result["baseline"].items())
    )
    judged = verdict(test, result["baseline"])
    if judged:
        lines.append(f"verdict: {judged}")
    samples, real, baseline = (
        result["samples"],
        result["test_split_statistics"],
        result.get("baseline_samples"),
    )
    if baseline is None:
        lines.append(
            "samples vs test split: "
            + ", ".join(f"{key} {samples[key]:.3g}/{real[key]:.3g}" for key in samples if key != "pieces")
        )
        followed = realism.audio_summary(result.get("set_level", {}))
        if followed:
            lines.append(f"verdict: {followed}")
        return "\n".join(lines)
    lines.append(
        "samples / test split / baseline's samples: "
        + ", ".join(
            f"{key} {samples[key]:.3g}/{real[key]:.3g}/{baseline[key]:.3g}"
            for key in samples
            if key != "pieces"
        )
    )
    closer, total = closer_statistics(samples, real, baseline)
    lines.append(
        f"samples closer to the test split than the baseline's samples on {closer} of {total} statistics"
    )
    judged_samples = realism.summary(result.get("set_level", {}))
    if judged_samples:
        lines.append(f"verdict: {judged_samples}")
    return "\n".join(lines)


def describe_samples(written: list[dict]) -> str:
    """ "3 MIDI files, 3 PNG files" from the files a sample writer listed."""
    counts: dict[str, int] = {}
    for item in written:
        for name in item.values():
            suffix = str(name).rpartition(".")[2].upper() if isinstance(name, str) and "." in name else None
            if suffix in ("MID", "WAV", "PNG"):
                counts[suffix] = counts.get(suffix, 0) + 1
    return ", ".join(
        f"{count} {'MIDI' if suffix == 'MID' else suffix} files" for suffix, count in counts.items()
    )


REALISM_HEADER = [
    "run",
    "excerpts (test / samples)",
    "C2ST model",
    "floor (train split)",
    "anchor (count baseline)",
    "realism",
    "OA ≥ baseline's",
]


def _read_search(results: Path) -> tuple[dict, list[dict]]:
    """A search's search.json and results.csv, or one MusicTFError naming what is wrong with them."""
    search = rundir.read_json(
        results.parent / "search.json",
        "it records what the search is: rerun the search to write it again",
        required=("space", "objective", "experiment", "tuner"),
    )
    try:
        with open(results, newline="") as handle:
            rows = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]
        for row in rows:
            int(row["trial"]), [row[name] for name in (*search["space"], "score")]
    except (OSError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as error:
        raise MusicTFError(
            f"{results}: unreadable ({type(error).__name__}: {' '.join(str(error).split())[:100]}); "
            "rerun the search to write it again"
        ) from None
    return search, rows


def realism_section(rows: list[tuple[str, dict]], tables: Path, figures: Path) -> str:
    """The set-level tests of each run's samples (metrics.json "set_level"): a table (Markdown and
    LaTeX), the classifier two-sample test's figure and Yang and Lerch's overlaps per feature."""
    if not rows:
        return ""
    table = [
        [
            label,
            f"{tests['excerpts']['test']} / {tests['excerpts']['model']}",
            tests["c2st"].get("model", "–"),
            tests["c2st"].get("floor", "–"),
            tests["c2st"].get("anchor", "–"),
            "–" if tests.get("realism") is None else tests["realism"],
            f"{tests.get('overlap_at_or_above_baseline', '–')} of {len(realism.FEATURES)}",
        ]
        for label, tests in rows
    ]
    files.write_text(tables / "sample_realism.md", markdown_table(REALISM_HEADER, table))
    files.write_text(
        tables / "sample_realism.tex",
        latex_table(REALISM_HEADER, table, "Set-level tests of the samples against the test split"),
    )
    tests_png, _ = plots.save_two_sample_tests(rows, figures / "sample-two-sample-tests")
    overlaps_png, _ = plots.save_overlaps(rows, realism.FEATURES, figures / "sample-overlaps")
    return (
        "<h3>Do the samples pass for the music?</h3><p>Excerpts of the test split against excerpts of "
        "the samples. A classifier on key-invariant features is scored by held-out accuracy over folds "
        "split by piece: against the train split (the floor, real music), the count baseline's samples "
        "(the anchor) and the model's samples; realism = (anchor − model) / (anchor − floor). Yang and "
        "Lerch's overlapping area (OA) per feature: 1 where the samples sit among the test split as its "
        f"own pieces do.</p>{_html_table(REALISM_HEADER, table)}"
        f'<img src="{_data_uri(tests_png, "image/png")}" alt="classifier two-sample test per run">'
        f'<img src="{_data_uri(overlaps_png, "image/png")}" alt="overlapping area per feature and run">'
    )


def scaling_section(bench_json: Path, figures: Path) -> str:
    """`make bench`'s scaling figure (bench/scaling.py), from bench.json beside the report."""
    if not bench_json.exists():
        return ""
    scaling = files.read_json(bench_json).get("scaling")
    if not scaling:
        return ""
    png, _ = plots.save_scaling(scaling["rows"], figures / "scaling")
    header = [
        "files",
        "cold ingest ms/file",
        "warm ingest ms/file",
        "data peak MB",
        "train peak MB",
        "steps/s",
    ]
    rows = [
        [
            row["files"],
            row["cold_ingest_ms_per_file"],
            row["warm_ingest_ms_per_file"],
            row["data_peak_rss_mb"],
            row["train_peak_rss_mb"],
            row["train_steps_per_second"],
        ]
        for row in scaling["rows"]
    ]
    return (
        f"<p>Ingest, peak memory and training speed as the corpus grows (synthetic MIDI corpora; "
        f"<code>musictf train 2 --preset smoke</code>, {scaling['train_steps']} steps per epoch). Training "
        f"memory grew {scaling['train_memory_growth']:.2f}× from the smallest corpus to the largest.</p>"
        f"{_html_table(header, rows)}"
        f'<img src="{_data_uri(png, "image/png")}" alt="memory, ingest and speed by corpus size">'
    )


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _html_table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_format(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, introduction: str, sections: list[tuple[str | None, str]]) -> str:
    """The self-contained page: a heading per section (None: the section brings its own)."""
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "td,th{border-bottom:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
        ".pair{display:grid;grid-template-columns:1fr 1fr;gap:8px}audio{width:100%}"
    )
    body = "\n".join(
        (f"<h2>{html.escape(heading)}</h2>\n" if heading else "") + content for heading, content in sections
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{style}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{introduction}
{body}
</body></html>
"""
