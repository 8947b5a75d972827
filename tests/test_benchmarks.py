"""The benchmark table: blocks per data set, each family's best run chosen on validation, baselines
and published rows beside them."""

import csv

import pytest

from musictf import rundir
from musictf.benchmarks import (
    HEADER,
    TCN_PAPER,
    BenchmarkEntry,
    benchmark_entry,
    benchmark_table,
    best_of_each_family,
    best_published,
    dataset_name,
)


def _entry(dataset, family, label, test, valid, markov=10.0):
    return BenchmarkEntry(
        dataset,
        family,
        label,
        test,
        valid,
        (valid + 1, valid),
        11.0,
        markov,
        markov - 0.2,
        600.0,
        "a CPU, 2 cores",
        True,
    )


@pytest.mark.parametrize(
    "file, name",
    [
        ("x/jsb-chorales-quarter.json", "JSB Chorales"),
        ("JSB_Chorales.mat", "JSB Chorales"),
        ("Nottingham.mat", "Nottingham"),
        ("musedata.pkl", "MuseData"),
        ("Piano_midi.pickle", "Piano-midi.de"),
    ],
)
def test_a_published_file_is_named_by_its_data_set(file, name):
    assert dataset_name(file, False) == (name, True)
    assert dataset_name("music21:bach", True)[1] is False


def test_each_block_holds_each_familys_best_run_by_validation_with_baselines_and_citations():
    entries = [
        _entry("Nottingham", "within the frame", "a", test=2.0, valid=2.5),
        _entry("Nottingham", "within the frame", "b", test=1.9, valid=2.6),  # better on test only
        _entry("Nottingham", "independent keys", "c", test=3.0, valid=3.1, markov=5.17),
        _entry("JSB Chorales", "independent keys", "d", test=8.2, valid=8.3),
    ]
    rows = benchmark_table(entries)
    assert all(len(row) == len(HEADER) for row in rows)
    assert [row[0] for row in rows].index("JSB Chorales") < [row[0] for row in rows].index("Nottingham")
    nottingham = [row for row in rows if row[0] == "Nottingham"]
    ours = [row for row in nottingham if row[1].startswith("musictf")]
    assert [row[1].split(":")[0] for row in ours] == ["musictf c", "musictf a"]  # b lost on validation
    assert ours[0][4] == pytest.approx(3.0 - 5.17)  # test - Markov: below zero beats the baseline
    assert [row[2] for row in nottingham if "count baseline" in row[1]] == [11.0, 5.17, pytest.approx(4.97)]
    assert {row[2] for row in nottingham if row[7] == TCN_PAPER} == {4.05, 3.29, 3.46, 3.07}
    johnson = {row[1]: row[2] for row in nottingham if row[7].startswith("Johnson")}
    assert johnson["BALSTM (biaxial LSTM), best of 5"] == 1.55 and johnson["LSTM-NADE, median of 5"] == 2.06
    muse = [row for row in rows if row[0] == "MuseData"]  # published rows only: no run, no baselines
    assert muse and not [row for row in muse if row[1].startswith("musictf") or "count baseline" in row[1]]
    assert {row[2] for row in muse if row[1] == "Note N-Gram (per key)"} == {7.91}


def test_a_runs_entry_carries_its_best_validation_training_time_and_machine(tmp_path):
    run_dir = tmp_path
    with open(run_dir / "history.csv", "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "val_frame_nll", "seconds"])
        writer.writerows([[0, 9.0, 100.0], [1, 8.5, 110.0], [2, 8.7, 90.0]])
    rundir.write_state(run_dir, machine={"cpu": "Test CPU", "cpu_flags": ["AVX2"], "cores": 2})
    metrics = {
        "representation": {"encoding": "active"},
        "config": {"pad_start": True, "frame_autoregression": True, "nade_units": 32},
        "source": "/data/nottingham.json",
        "test": {"frame_nll_nats": 2.2},
        "baseline": {"independent_bernoulli_nll_nats": 10.25, "markov_nll_nats": 5.17},
    }
    entry = benchmark_entry("e3 (nottingham)", metrics, run_dir)
    assert (entry.dataset, entry.family, entry.valid_nll, entry.train_seconds) == (
        "Nottingham",
        "within the frame",
        8.5,
        300.0,
    )
    assert "NADE(32)" in entry.label and entry.machine == "Test CPU, 2 cores, AVX2"
    # where the epochs scored a sample of the valid split, the whole split's score chooses
    metrics["valid"] = {"frame_nll_nats": 8.6}
    assert benchmark_entry("e3 (nottingham)", metrics, run_dir).valid_nll == 8.6
    # a pitch axis (experiment 6) is the tied-parallel family, set against Johnson's tied rows
    metrics["config"] = {"pad_start": True, "frame_autoregression": True, "pitch_layers": 2}
    tied = benchmark_entry("e6 (nottingham)", metrics, run_dir)
    assert (tied.family, tied.label) == ("tied parallel", "e6 (nottingham)")
    assert best_published("Nottingham")["tied parallel"] == ("BALSTM (biaxial LSTM), best of 5", 1.55)
    metrics["representation"]["encoding"] = "onset_sustain"
    assert benchmark_entry("e2", metrics, run_dir) is None


def test_musictf_benchmarks_plans_each_found_files_presets_and_refuses_a_folder_without_any(tmp_path, capsys):
    from musictf.cli import main
    from tests.data.test_published import write_benchmark

    folder = tmp_path / "published"
    folder.mkdir()
    write_benchmark(folder / "Nottingham.mat", "mat")
    write_benchmark(folder / "jsb-chorales-quarter.json", "json")
    (folder / "notes.txt").write_text("not a benchmark")
    assert main(["benchmarks", str(folder), "--list"]) == 0  # both experiments by default
    planned = capsys.readouterr().out.splitlines()
    assert planned == [
        f"musictf run {n} --preset {preset} --source {folder / name}"
        for name, base in (("jsb-chorales-quarter.json", "jsb"), ("Nottingham.mat", "nottingham"))
        for n in ("2", "3")
        for preset in (base, f"{base}-independent")
    ]
    assert main(["benchmarks", str(folder), "--list", "--experiment", "3", "--family", "independent"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"musictf run 3 --preset jsb-independent --source {folder / 'jsb-chorales-quarter.json'}",
        f"musictf run 3 --preset nottingham-independent --source {folder / 'Nottingham.mat'}",
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["benchmarks", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none of the published files" in err


def test_the_benchmark_figure_draws_one_panel_per_data_set(tmp_path):
    from musictf.plots import save_benchmark_curves

    entries = [
        _entry("JSB Chorales", "within the frame", "a", test=5.7, valid=5.8),
        _entry("Nottingham", "independent keys", "b", test=3.1, valid=3.2),
    ]
    published = {"JSB Chorales": best_published("JSB Chorales")}
    png, pdf = save_benchmark_curves(entries, best_of_each_family(entries), published, tmp_path / "curves")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:4] == b"%PDF"


def test_the_benchmark_figure_names_the_tables_runs_and_greys_the_rest(tmp_path, monkeypatch):
    import matplotlib.figure

    from musictf.plots import save_benchmark_curves

    entries = [
        _entry("JSB Chorales", "within the frame", "best", test=5.7, valid=5.8),
        _entry("JSB Chorales", "within the frame", "worse", test=5.6, valid=5.9),
        _entry("JSB Chorales", "within the frame", "worst", test=6.0, valid=6.1),
    ]
    legends = []
    real_savefig = matplotlib.figure.Figure.savefig

    def savefig(figure, *args, **kwargs):
        legends.append([text.get_text() for text in figure.axes[0].get_legend().get_texts()])
        return real_savefig(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    save_benchmark_curves(entries, best_of_each_family(entries), {}, tmp_path / "curves")
    labels = legends[0]
    assert labels[0] == "other runs (2)" and any("best" in label for label in labels)
    assert not any("worse" in label or "worst" in label for label in labels)


def test_each_family_is_drawn_against_its_own_best_published_row():
    """Within-frame runs against within-frame models (BALSTM's best of five), independent keys
    against independent ones (the TCN, the LSTM/GRU/RNN rows); the N-gram and the only-quoted
    DBN-LSTM are never a family's reference."""

    jsb = best_published("JSB Chorales")
    assert jsb["within the frame"] == ("BALSTM (biaxial LSTM), best of 5", 5.05)
    assert jsb["independent keys"] == ("TCN", 8.10)
    assert best_published("MuseData")["independent keys"] == ("RNN (Hessian-free)", 7.19)
    assert all(
        "DBN" not in model and "N-Gram" not in model for model, _ in best_published("Nottingham").values()
    )
