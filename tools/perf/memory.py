"""Figure 7: peak resident memory of each `make experiment-N`.

`musictf run` records its peak RSS (its own, and that of the parser processes it started) in the
run's state.json when it finishes. Running all five experiments takes longer than the benchmark's
budget, so the figure is read from the newest finished run of each experiment's preset, with the
run's path and date; an experiment that was never run is reported as not measured.
"""

from __future__ import annotations

from pathlib import Path

from musictf import files


def memory_figures(runs_root: Path, preset: str) -> dict:
    from musictf.experiments import get_experiment

    results = {}
    for number in range(1, 6):
        candidates = sorted(
            Path(runs_root, get_experiment(str(number)).slug).glob(f"{preset}-*"), reverse=True
        )
        found = None
        for run in candidates:
            state_path = run / "state.json"
            state = files.read_json(state_path) if state_path.exists() else {}
            if state.get("peak_rss_mb"):
                found = {
                    "run": str(run),
                    "finished": state.get("finished"),
                    "peak_rss_mb": state["peak_rss_mb"],
                }
                break
        results[str(number)] = found or {
            "run": None,
            "note": f"no finished `musictf run {number} --preset {preset}` "
            f"with a recorded peak RSS under {runs_root}",
        }
    return {"preset": preset, "experiments": results}
