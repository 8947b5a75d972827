"""Run directories: `runs/<experiment>/<preset>-<timestamp>/` holds everything about a run.

config.json (resolved), representation.json (tokenizer and vocabulary, or roll grid),
manifest.json (sources, file hashes, split), ingest.json, checkpoints/{best,last}.keras,
backup/ (for resuming), history.csv, logs/ (TensorBoard), samples/, metrics.json, state.json.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from pathlib import Path

import numpy as np

from musictf import config as config_module
from musictf import files
from musictf.data import representation as representation_module
from musictf.errors import MusicTFError

RUNS_ROOT = Path("runs")


@dataclasses.dataclass
class Run:
    path: Path
    experiment: object
    preset: str
    config: object
    representation: object
    data_hash: str | None = None  # the manifest's: which files, in which split, the run was trained on

    def checkpoint(self, which: str = "best") -> Path:
        return self.path / "checkpoints" / f"{which}.keras"


def new_run_dir(experiment, preset: str, root: Path = RUNS_ROOT) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / experiment.slug / f"{preset}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / experiment.slug / f"{preset}-{stamp}-{suffix}"
    return path


def weights_are_finite(model) -> bool:
    return all(np.isfinite(weights).all() for weights in model.get_weights())


def peak_rss_megabytes() -> dict:
    """This process's peak RSS and the largest of its finished children's (Linux: ru_maxrss in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"process": round(own, 1), "largest_child": round(children, 1)}


def record_finish(run_dir: Path) -> None:
    """The command's peak memory and end time, in state.json (`make bench` reads the memory)."""
    write_state(run_dir, peak_rss_mb=peak_rss_megabytes(), finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def read_state(run_dir: Path) -> dict:
    path = Path(run_dir) / "state.json"
    return files.read_json(path) if path.exists() else {}


def write_state(run_dir: Path, **fields) -> None:
    files.write_json(Path(run_dir) / "state.json", read_state(run_dir) | fields)


def find_unfinished(experiment, preset: str, config, root: Path = RUNS_ROOT) -> Path | None:
    """The newest run of this experiment and preset, with the same config, whose training did not finish."""
    folder = Path(root) / experiment.slug
    if not folder.is_dir():
        return None
    wanted = config_module.to_dict(config)
    for candidate in sorted(folder.glob(f"{preset}-*"), reverse=True):
        try:
            saved = files.read_json(candidate / "config.json")
        except (OSError, ValueError):
            continue
        if saved.get("config") == wanted and read_state(candidate).get("training") != "complete":
            return candidate
    return None


def save_run_files(run_dir: Path, experiment, preset: str, config, representation, manifest: dict) -> None:
    files.write_json(run_dir / "config.json", {
        "experiment": experiment.slug, "preset": preset, "config": config_module.to_dict(config),
    })
    files.write_json(run_dir / "representation.json", representation.to_json())
    files.write_json(run_dir / "manifest.json", manifest)


def load_run(run_dir: str | Path) -> Run:
    from musictf.experiments import get_experiment

    path = Path(run_dir)
    if not (path / "config.json").is_file() or not (path / "representation.json").is_file():
        raise MusicTFError(f"{path}: not a run directory (no config.json / representation.json)")
    saved = files.read_json(path / "config.json")
    experiment = get_experiment(saved["experiment"])
    config = config_module.from_dict(experiment.config_class, saved["config"], origin=f"{path}/config.json")
    representation = representation_module.from_json(files.read_json(path / "representation.json"))
    manifest = files.read_json(path / "manifest.json") if (path / "manifest.json").is_file() else {}
    return Run(path, experiment, saved["preset"], config, representation, manifest.get("data_hash"))


def load_model(run: Run, which: str = "best"):
    """The run's checkpoint: the model rebuilt from the run's config (so it has its stepper, see
    steppers.py) with the checkpoint's weights, checked against the run's representation."""
    path = run.checkpoint(which)
    if not path.exists():
        raise MusicTFError(f"{run.path}: no {which} checkpoint yet ({path}); train the run first")
    model = run.experiment.build_model(run.config, run.representation.features)
    try:
        model.load_weights(path)
    except ValueError as error:
        raise MusicTFError(
            f"{path}: the checkpoint's weights do not fit a model for the run's representation "
            f"({run.representation.features} features per step; {' '.join(str(error).split())[:120]}); "
            "the checkpoint and representation.json do not belong together"
        ) from None
    if not weights_are_finite(model):
        raise MusicTFError(f"{path}: the checkpoint holds NaN or infinite weights (a diverged run); "
                           "train again with a lower learning_rate")
    return model
