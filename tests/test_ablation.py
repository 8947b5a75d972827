"""`musictf ablation`: cumulative steps from the TOML file, each a real run, resumable, in the report."""

import json

import pytest

from musictf.cli import main


@pytest.mark.slow  # keeps `make test` under 10 minutes on 2 cores
def test_the_ablation_switches_additions_on_in_turn_resumes_and_reaches_the_report(
    tmp_path, monkeypatch, cache_dir
):
    monkeypatch.chdir(tmp_path)
    assert main(["ablation", "4", "--preset", "smoke"]) == 0
    folder = tmp_path / "runs" / "ablation" / "e4_polyphonic-smoke"
    ablation = json.loads((folder / "ablation.json").read_text())
    steps = ablation["steps"]
    assert [step["name"] for step in steps] == [
        "experiment 3 (BCE, teacher forcing, independent flags)",
        "+ focal loss",
        "+ scheduled sampling",
        "+ threshold chosen on validation",
        "+ keys conditioned within the frame, scheduled sampling off (the cpu default)",
    ]
    configs = [
        json.loads((tmp_path / step["run_dir"] / "config.json").read_text())["config"] for step in steps
    ]
    assert [c["focal_weight"] for c in configs] == [0.0, 1.0, 1.0, 1.0, 1.0]  # cumulative
    assert [c["teacher_forcing_schedule"] for c in configs] == [
        "constant",
        "constant",
        "quadratic",
        "quadratic",
        "constant",
    ]
    assert [c["tune_threshold"] for c in configs] == [False, False, False, True, True]
    assert [c["frame_autoregression"] for c in configs] == [False, False, False, False, True]
    assert all(step["frame_nll_nats"] > 0 and step["markov_nll_nats"] > 0 for step in steps)
    finished = [(tmp_path / step["run_dir"] / "metrics.json").stat().st_mtime_ns for step in steps]
    assert main(["ablation", "4", "--preset", "smoke"]) == 0  # finished steps are not trained again
    assert [(tmp_path / step["run_dir"] / "metrics.json").stat().st_mtime_ns for step in steps] == finished
    assert main(["report"]) == 0
    table = (tmp_path / "reports" / "tables" / "ablation-e4_polyphonic-smoke.md").read_text()
    assert "+ scheduled sampling" in table and "test split" in table
    assert (tmp_path / "reports" / "figures" / "ablation-e4_polyphonic-smoke.png").read_bytes()[
        :4
    ] == b"\x89PNG"


def test_an_experiment_without_ablation_steps_gets_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["ablation", "2", "--preset", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no [[ablation]] steps" in err and len(err.splitlines()) == 1
