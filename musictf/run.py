"""The library entry point: `train_and_evaluate`, what `musictf run` and `make experiment-N` do.

Like Flax's `train.train_and_evaluate(config, workdir)`: the data is prepared once, the model is
trained into `run_dir`, its best checkpoint samples and is scored on the test split, and the
metrics come back. The CLI only parses flags and calls this.

Example:
    experiment = get_experiment("4")
    config = experiment.load_config("smoke")
    metrics = train_and_evaluate(experiment, config, "runs/e4/smoke", preset="smoke")
    metrics["test"]["frame_nll_nats"], metrics["baseline"], metrics["history"]["loss"]
"""

from __future__ import annotations

from pathlib import Path

from musictf import multiworker, rundir
from musictf.evaluate import evaluate
from musictf.experiments.base import Experiment, prepare_data
from musictf.train import train


def train_and_evaluate(experiment: Experiment, config, run_dir: str | Path, preset: str = "custom",
                       strategy_name: str = "default", verbose: str | int = "auto") -> dict:
    """Trains (resuming an interrupted run), writes samples from the best checkpoint, evaluates.

    Returns metrics.json's content with the training history (`"history"`) and the written sample
    files (`"sample_files"`). A multi-worker process that is not the chief trains only, and gets
    `{"history": ...}`.
    """
    run_dir = Path(run_dir)
    data = prepare_data(experiment, config)  # once: training, sampling and evaluation share it
    history = train(experiment, config, run_dir, preset, strategy_name, data=data, verbose=verbose)
    if not multiworker.is_chief(strategy_name):
        return {"history": history}
    run = rundir.Run(run_dir, experiment, preset, config, data.representation, data.manifest()["data_hash"])
    model = rundir.load_model(run)
    written = experiment.write_samples(
        run, model, data, num=config.num_samples, length=config.generate_length, seed=config.seed,
        out_dir=run_dir / "samples")
    return evaluate(run_dir, data=data, model=model) | {"history": history, "sample_files": written}
