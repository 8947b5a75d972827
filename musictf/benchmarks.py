"""The polyphonic benchmark table: one block per data set of Boulanger-Lewandowski, Bengio and Vincent
(ICML 2012), each holding musictf's best run of each model family (chosen on the valid split), the
three count baselines on the same test frames, and the published rows, each with the paper it was
read from.

Test NLL is in nats per frame, summed over the 88 keys, every frame of every test sequence scored from
its first. A run is on the protocol when it used 88-key active rolls at one frame per grid step with
`pad_start`; runs on a published file are grouped by the data set its file name names.

`benchmark_runs.benchmark_plan(folder, ...)` lists the runs `musictf benchmarks` (`make benchmarks
DATA=folder`) makes: the presets of whichever published files the folder holds.

Example:
    rows = benchmark_table([benchmark_entry(label, metrics, run_dir) for ...])
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from musictf import host, rundir
from musictf.data.sources import parse_source

TCN_PAPER = "Bai, Kolter and Koltun 2018 (TCN paper), Table 1"
BL2012 = "Boulanger-Lewandowski, Bengio and Vincent, ICML 2012, Table 1"
JOHNSON = "Johnson, Generating Polyphonic Music Using Tied Parallel Networks, EvoMusArt 2017, Table 1"
DATASET_ORDER = ("JSB Chorales", "Nottingham", "MuseData", "Piano-midi.de")
# (model, its four test NLLs in DATASET_ORDER, citation), each read from the paper it cites. Johnson
# gives the best and the median of five trials: two rows.
PUBLISHED = [
    ("Note N-Gram (per key)", (10.26, 4.54, 7.91, 7.50), BL2012),
    ("MLP", (8.70, 4.38, 7.94, 8.13), BL2012),
    ("RNN (SGD)", (8.71, 4.46, 8.13, 8.37), BL2012),
    ("RNN (Hessian-free)", (8.58, 3.89, 7.19, 7.66), BL2012),
    ("RNN-RBM (AIS estimate)", (6.27, 2.39, 6.01, 7.09), BL2012),
    ("RNN-NADE (SGD)", (5.83, 2.91, 6.74, 7.48), BL2012),
    ("RNN-NADE (Hessian-free)", (5.56, 2.31, 5.60, 7.05), BL2012),
    ("LSTM-NADE, best of 5", (6.00, 2.02, 5.02, 7.36), JOHNSON),
    ("LSTM-NADE, median of 5", (6.10, 2.06, 5.03, 7.39), JOHNSON),
    ("TP-LSTM-NADE, best of 5", (5.88, 1.61, 4.32, 5.44), JOHNSON),
    ("TP-LSTM-NADE, median of 5", (5.92, 1.64, 4.34, 5.49), JOHNSON),
    ("BALSTM (biaxial LSTM), best of 5", (5.05, 1.55, 3.90, 4.90), JOHNSON),
    ("BALSTM (biaxial LSTM), median of 5", (5.86, 1.62, 4.41, 5.00), JOHNSON),
    (
        "DBN-LSTM (Vohra et al. 2015)",
        (3.47, 1.32, 3.91, 4.63),
        "quoted by Johnson 2017 and the TCN paper; its own paper and protocol not read here",
    ),
]
# (data set, model, test NLL, citation)
LITERATURE = [
    (dataset, model, nll, citation)
    for model, values, citation in PUBLISHED
    for dataset, nll in zip(DATASET_ORDER, values, strict=True)
] + [
    ("JSB Chorales", "RNN", 8.91, TCN_PAPER),
    ("JSB Chorales", "LSTM", 8.45, TCN_PAPER),
    ("JSB Chorales", "GRU", 8.43, TCN_PAPER),
    ("JSB Chorales", "TCN", 8.10, TCN_PAPER),
    ("Nottingham", "RNN", 4.05, TCN_PAPER),
    ("Nottingham", "LSTM", 3.29, TCN_PAPER),
    ("Nottingham", "GRU", 3.46, TCN_PAPER),
    ("Nottingham", "TCN", 3.07, TCN_PAPER),
]
# A published file's data set, by a word of its file name (jsb-chorales-quarter.json, JSB_Chorales.mat,
# Nottingham.mat, musedata.json, Piano_midi.pkl, ...), in the table's order.
DATASETS = {"jsb": "JSB Chorales", "nottingham": "Nottingham", "muse": "MuseData", "piano": "Piano-midi.de"}
# Each data set's presets in experiments/e2_*.toml and e3_*.toml: PRESET (within the frame) and
# PRESET-independent.
PRESETS = {
    "JSB Chorales": "jsb",
    "Nottingham": "nottingham",
    "MuseData": "musedata",
    "Piano-midi.de": "piano-midi",
}
FAMILIES = ("within the frame", "independent keys", "tied parallel")
HEADER = ["data set", "model", "test NLL", "valid NLL", "test − Markov", "train time", "machine", "source"]


# The published models of each family, as the table compares them: within-frame models against
# within-frame ones, independent keys against independent ones, the tied-parallel runs
# (experiment 6) against the tied-parallel rows. The N-gram is a count baseline, and
# DBN-LSTM is only quoted, so neither is a family's reference.
PUBLISHED_FAMILY_PREFIXES = {
    FAMILIES[0]: (
        "RNN-RBM",
        "RNN-NADE",
        "LSTM-NADE, best",
        "TP-LSTM-NADE, best",
        "BALSTM (biaxial LSTM), best",
    ),
    FAMILIES[1]: ("MLP", "RNN", "LSTM", "GRU", "TCN"),
    FAMILIES[2]: ("TP-LSTM-NADE, best", "BALSTM (biaxial LSTM), best"),
}


def best_published(dataset: str) -> dict[str, tuple[str, float]]:
    """{family: (model, test NLL)}: the best published row of each family on `dataset`."""
    best: dict[str, tuple[str, float]] = {}
    for row_dataset, model, nll, _ in LITERATURE:
        for family, prefixes in PUBLISHED_FAMILY_PREFIXES.items():
            if row_dataset == dataset and any(
                model == prefix or model.startswith(f"{prefix} ") for prefix in prefixes
            ):
                if family not in best or nll < best[family][1]:
                    best[family] = (model, nll)
    return best


@dataclasses.dataclass(frozen=True)
class BenchmarkEntry:
    """One evaluated run on the frame protocol."""

    dataset: str
    family: str
    label: str
    test_nll: float
    # the best checkpoint's validation NLL, what chooses a family's best run: the best epoch's, or the
    # whole split's scored after training where the epochs scored a sample of it (epoch_eval_windows)
    valid_nll: float
    valid_curve: tuple  # the validation NLL of every epoch
    independent_bernoulli: float | None
    markov: float | None
    ngram: float | None  # BL2012's per-key N-gram, its history chosen on the valid split
    train_seconds: float | None
    machine: str
    canonical: bool  # the file's own split, as published


def dataset_name(source: str, transpose_to_c: bool) -> tuple[str, bool]:
    """(the data set's name in the table, whether it is a published file with its own split)."""
    if parse_source(source).kind == "published":
        stem = Path(source).stem.lower()
        name = next((label for word, label in DATASETS.items() if word in stem), Path(source).stem)
        return name, True
    return f"{source} ({'in C, ' if transpose_to_c else ''}frames sampled at grid steps; our split)", False


def benchmark_entry(label: str, metrics: dict, run_dir: Path) -> BenchmarkEntry | None:
    """A run's entry, or None for a run off the protocol (tokens, onset/sustain rolls, or scoring that
    does not start at each sequence's first frame)."""
    representation, config = metrics["representation"], metrics["config"]
    if not (representation.get("encoding") == "active" and config.get("pad_start")):
        return None
    dataset, canonical = dataset_name(metrics["source"], config.get("transpose_to_c", False))
    rows, _ = rundir.read_history(Path(run_dir) / "history.csv")
    valid = [row["val_frame_nll"] for row in rows if isinstance(row.get("val_frame_nll"), float)]
    seconds = [row["seconds"] for row in rows if isinstance(row.get("seconds"), float)]
    machine = rundir.read_state(run_dir).get("machine")
    return BenchmarkEntry(
        dataset=dataset,
        family=_family(config),
        label=label
        + (f", NADE({config['nade_units']})" if config.get("nade_units") else "")
        + (", linear" if _family(config) == FAMILIES[0] and not config.get("nade_units") else ""),
        test_nll=metrics["test"]["frame_nll_nats"],
        valid_nll=metrics.get("valid", {}).get("frame_nll_nats", min(valid) if valid else math.inf),
        valid_curve=tuple(valid),
        independent_bernoulli=metrics["baseline"].get("independent_bernoulli_nll_nats"),
        markov=metrics["baseline"].get("markov_nll_nats"),
        ngram=metrics["baseline"].get("ngram_nll_nats"),
        train_seconds=sum(seconds) if len(seconds) == len(rows) and rows else None,
        machine=host.describe(machine) if machine else "not recorded",
        canonical=canonical,
    )


def _family(config: dict) -> str:
    """A run's family, from its config: weights shared by the keys (a pitch axis: experiment 6),
    the keys of a frame conditioned on each other, or independent keys."""
    if config.get("pitch_layers"):
        return FAMILIES[2] if config.get("frame_autoregression") else f"{FAMILIES[2]}, independent keys"
    return FAMILIES[0] if config.get("frame_autoregression") else FAMILIES[1]


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f} min"


def best_of_each_family(entries: list[BenchmarkEntry]) -> list[BenchmarkEntry]:
    """The run of each (data set, family) with the lowest validation NLL (never chosen on test)."""
    best: dict[tuple[str, str], BenchmarkEntry] = {}
    for entry in entries:
        key = (entry.dataset, entry.family)
        if key not in best or entry.valid_nll < best[key].valid_nll:
            best[key] = entry
    return list(best.values())


def benchmark_table(entries: list[BenchmarkEntry]) -> list[list]:
    """Rows under `HEADER`, one block per data set: musictf's best run of each family, the three
    count baselines on that run's test frames, then the published rows with their citations."""
    chosen = best_of_each_family(entries)
    order = list(DATASETS.values())
    datasets = order + sorted({entry.dataset for entry in chosen} - set(order))
    rows = []
    for dataset in datasets:
        ours = sorted((entry for entry in chosen if entry.dataset == dataset), key=lambda e: e.family)
        published = [row for row in LITERATURE if row[0] == dataset]
        if not ours and not published:
            continue
        for entry in ours:
            margin = entry.test_nll - entry.markov if entry.markov is not None else "–"
            rows.append(
                [
                    dataset,
                    f"musictf {entry.label}: {entry.family}",
                    entry.test_nll,
                    entry.valid_nll if math.isfinite(entry.valid_nll) else "–",
                    margin,
                    _minutes(entry.train_seconds),
                    entry.machine,
                    "this run"
                    + ("" if entry.canonical else ", our split: not comparable with published rows"),
                ]
            )
        if ours:  # the baselines of the first run; every run of a data set has the same test frames
            reference = ours[0]
            for name, value in (
                ("independent Bernoulli per key (count baseline)", reference.independent_bernoulli),
                ("first-order Markov per key (count baseline)", reference.markov),
                (
                    "per-key N-gram, history chosen on valid (count baseline; BL2012's Note N-Gram)",
                    reference.ngram,
                ),
            ):
                rows.append(
                    [
                        dataset,
                        name,
                        value if value is not None else "–",
                        "–",
                        "–",
                        "–",
                        "–",
                        "same test frames",
                    ]
                )
        for _, model, nll, citation in published:
            rows.append([dataset, model, nll, "–", "–", "–", "–", citation])
    return rows
