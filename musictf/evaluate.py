"""The common evaluation protocol on a run's test split, written to metrics.json.

Token models: cross-entropy, perplexity, accuracy. Roll models: frame NLL (nats per frame,
summed over the output flags), precision, recall, F1 and Bay accuracy at the threshold. Every run:
sample-quality statistics of its generated pieces next to the same statistics on the test split.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from musictf import config as config_module
from musictf import files, metrics, rundir
from musictf.data.pianoroll import read_midi
from musictf.data.pipeline import make_dataset
from musictf.experiments.base import prepare_data
from musictf.generate import generate_samples
from musictf.train import evaluation_stride, set_precision


def predict_split(model, experiment, config, arrays) -> tuple[np.ndarray, np.ndarray]:
    """(logits, targets) for the windows of one split, every frame predicted once."""
    dataset = make_dataset(arrays, seq_len=config.seq_len, target=experiment.target, batch_size=config.batch_size,
                           shuffle=False, seed=config.seed, stride=evaluation_stride(experiment, config, arrays))
    forward = tf.function(lambda x: model(x, training=False))
    all_logits, all_targets = [], []
    for inputs, targets in dataset:
        all_logits.append(forward(inputs).numpy())
        all_targets.append(targets.numpy())
    logits, targets = np.concatenate(all_logits), np.concatenate(all_targets)
    if experiment.target == "window":  # (windows, steps, flags) -> (frames, flags)
        logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1, targets.shape[-1])
    return logits, targets


def metrics_path(run_dir: str | Path, source: str | None = None) -> Path:
    """metrics.json for the run's own data; metrics-<source>.json beside it for another source, so
    that evaluating elsewhere never overwrites the run's own result."""
    if source is None:
        return Path(run_dir) / "metrics.json"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("._")[-80:] or "source"
    return Path(run_dir) / f"metrics-{name}.json"


def evaluate(run_dir: str | Path, source: str | None = None, checkpoint: str = "best", data=None, model=None) -> dict:
    """`data` and `model`, when the caller already has them for this run, are used as they are."""
    run = rundir.load_run(run_dir)
    files.require_writable_dir(run.path, "metrics")
    if source == run.config.source:
        source = None
    config = run.config if source is None else config_module.replace(run.config, {"source": source}, "--source")
    if data is None:
        data = prepare_data(run.experiment, config, representation=run.representation, run_data_hash=run.data_hash)
    set_precision(config.precision)
    if model is None:
        model = rundir.load_model(run, checkpoint)
    split = "test" if data.arrays["test"] else "valid"
    if run.experiment.test_metrics is None:
        logits, targets = predict_split(model, run.experiment, config, data.arrays[split])
    if run.experiment.test_metrics is not None:
        test_metrics, baseline = run.experiment.test_metrics(model, config, data, split)
    elif run.experiment.kind == "tokens":
        test_metrics = metrics.token_metrics(logits, targets.astype(np.int64), data.representation.unknown_id)
        baseline = metrics.token_baseline(data.arrays["train"], targets.astype(np.int64), logits.shape[-1])
    else:
        test_metrics = metrics.roll_metrics(logits, targets, config.output, config.threshold)
        baseline = metrics.roll_baseline(data.arrays["train"], targets)

    samples_dir = run.path / "samples"
    if not (samples_dir / "samples.json").exists():
        (run.experiment.write_samples or generate_samples)(
            run, model, data, num=config.num_samples, length=config.generate_length, seed=config.seed, out_dir=samples_dir)
    listed = files.read_json(samples_dir / "samples.json")["samples"]
    if run.experiment.kind == "audio":
        from musictf.data.audio import mu_law_decode, read_wav

        sample_quality = metrics.audio_quality([read_wav(samples_dir / item["wav"])[0] for item in listed], config.sample_rate)
        split_quality = metrics.audio_quality([mu_law_decode(item[0]) for item in data.arrays[split]], config.sample_rate)
    else:
        sample_quality = metrics.sample_quality([read_midi(samples_dir / item["midi"]) for item in listed])
        split_quality = metrics.sample_quality([piece.notes for piece in data.splits[split]])
    result = {
        "experiment": run.experiment.slug,
        "preset": run.preset,
        "checkpoint": checkpoint,
        "split": split,
        "source": config.source,
        "data_hash": data.manifest()["data_hash"],
        "representation": {k: v for k, v in run.representation.to_json().items() if k != "vocabulary"},
        "test": test_metrics,
        "baseline": baseline,  # the same targets scored by a model of the train split's frequencies
        "samples": sample_quality,
        "test_split_statistics": split_quality,
        "config": dataclasses.asdict(config),
    }
    path = metrics_path(run.path, source)
    files.write_json(path, result)
    return result | {"metrics_file": str(path)}
