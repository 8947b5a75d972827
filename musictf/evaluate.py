"""The common evaluation protocol: the functions an experiment's `test_metrics` slot names.

Each takes `(run, data, model, split)` and returns (metrics, baselines on the same targets);
`run.evaluate` writes them to metrics.json. The three:
- `token_test_metrics`: cross-entropy, perplexity and accuracy, beside a unigram baseline;
- `roll_test_metrics`: frame NLL (nats per frame, summed over the output flags), precision, recall,
  F1 and Bay accuracy at the threshold, beside an independent-Bernoulli baseline;
- `audio_test_metrics`: NLL per sample where the receptive field is full, beside the unigram of
  the train split's codes and "repeat the previous sample".
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from musictf import baselines, files, metrics
from musictf.data.pipeline import audio_dataset, make_dataset, scoring_windows
from musictf.data.windows import WindowSpec, padded


def predict_split(model, target: str, config, arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits, targets, previous) for the windows of one split, every frame predicted once (with
    `pad_start`, every frame of every piece, from its first); `previous` is the step before each
    target (what a first-order baseline conditions on: silence before a piece's first frame)."""
    dataset, scored = _scoring_dataset(target, config, arrays)
    forward = model.predict_on_batch  # one compiled function per model, kept by Keras
    all_logits, all_targets, all_previous = [], [], []
    for inputs, targets in dataset:
        all_logits.append(np.asarray(forward(inputs)))
        all_targets.append(targets.numpy())
        # next: the window's last step; window: the teacher-forced decoder input, the target shifted by one
        all_previous.append(
            inputs[1].numpy()
            if target == "window"
            else (inputs[0] if isinstance(inputs, tuple) else inputs)[:, -1].numpy()
        )
    logits, targets, previous = (np.concatenate(parts) for parts in (all_logits, all_targets, all_previous))
    if target == "window":  # (windows, steps, flags) -> (frames, flags)
        logits, targets, previous = (part.reshape(-1, part.shape[-1]) for part in (logits, targets, previous))
    return logits[scored], targets[scored], previous[scored]


def _scoring_dataset(target: str, config, arrays):
    """The windows that score a split (each frame once), batched in order, and which rows count."""
    windows_of, (stride, every), scored = scoring_windows(arrays, config, target)
    spec = WindowSpec(
        config.seq_len,
        target,
        config.batch_size,
        config.seed,
        stride=stride,
        every=every,
        target_as_input=config.target_is_input,
    )
    dataset = make_dataset(windows_of, spec)
    return dataset, scored


def scored_histories(target: str, config, arrays, steps: int) -> np.ndarray:
    """For each frame `predict_split` scores, in its order: each flag's previous `steps` states
    (at most `seq_len`) packed as bits, bit i - 1 the state i frames before (silence before a
    piece, with `pad_start`), (frames, flags) int64: what a per-flag N-gram conditions on."""
    steps = min(steps, config.seq_len)
    dataset, scored = _scoring_dataset(target, config, arrays)
    codes = []
    for inputs, _ in dataset:
        window = (inputs[0] if isinstance(inputs, tuple) else inputs).numpy().astype(np.int64)
        if target == "window":  # w[0:2L-1] = encoder input w[0:L] then decoder input w[L-1:2L-1]
            full = np.concatenate([window[:, :-1], inputs[1].numpy().astype(np.int64)], axis=1)
            length = config.seq_len
            packed = sum(full[:, length - i : 2 * length - i] << (i - 1) for i in range(1, steps + 1))
            codes.append(packed.reshape(-1, packed.shape[-1]))
        else:  # the target follows the window
            codes.append(sum(window[:, -i] << (i - 1) for i in range(1, steps + 1)))
    return np.concatenate(codes)[scored]


def nll_per_quarter(nll_per_step: float, data, split: str) -> float:
    """NLL per quarter note: the mean NLL per step times the split's steps over its pieces' length in
    quarters (the summed NLL of the music over its length, where every step is scored). The music's
    length does not depend on the representation, so token modes and piano rolls rank on one axis."""
    steps = sum(data.representation.steps(item) for item in data.arrays[split])
    quarters = sum(piece.length_quarters for piece in data.splits[split])
    return nll_per_step * steps / quarters if quarters else float("nan")


def token_test_metrics(run, data, model, split: str) -> tuple[dict, dict]:
    logits, targets, previous = predict_split(model, run.experiment.target, run.config, data.arrays[split])
    targets = targets.astype(np.int64)
    baseline = baselines.token_baseline(data.arrays["train"], targets, logits.shape[-1])
    baseline |= baselines.token_bigram_baseline(
        data.arrays["train"], data.arrays["valid"], previous, targets, logits.shape[-1]
    )
    result = metrics.token_metrics(logits, targets, data.representation.unknown_id)
    result["nll_nats_per_quarter"] = nll_per_quarter(result["cross_entropy_nats"], data, split)
    baseline["bigram_nats_per_quarter"] = nll_per_quarter(baseline["bigram_cross_entropy_nats"], data, split)
    return result, baseline


def roll_test_metrics(run, data, model, split: str) -> tuple[dict, dict]:
    config = run.config
    logits, targets, previous = predict_split(model, run.experiment.target, config, data.arrays[split])
    baseline = baselines.roll_baseline(data.arrays["train"], targets)
    # with pad_start, the chain also learns how pieces begin: from silence to their first frame
    train = padded(data.arrays["train"], 1) if config.pad_start else data.arrays["train"]
    baseline |= baselines.markov_roll_baseline(train, previous, targets)
    longest = baselines.NGRAM_MAX_ORDER
    padded_train = padded(data.arrays["train"], longest)
    valid = padded(data.arrays["valid"], longest) if data.arrays["valid"] else []
    order = baselines.ngram_order(padded_train, valid)
    histories = scored_histories(run.experiment.target, config, data.arrays[split], order)
    train_with_order = [frames[longest - order :] for frames in padded_train]  # `order` silent frames each
    baseline |= baselines.ngram_roll_baseline(train_with_order, histories, targets, order)
    threshold = config.threshold
    if config.tune_threshold and data.arrays["valid"] and split != "valid":
        valid_logits, valid_targets, _ = predict_split(
            model, run.experiment.target, config, data.arrays["valid"]
        )
        threshold = metrics.best_f1_threshold(valid_logits, valid_targets, config.output)
    result = metrics.roll_metrics(logits, targets, config.output, threshold) | {"threshold": threshold}
    result["nll_nats_per_quarter"] = nll_per_quarter(result["frame_nll_nats"], data, split)
    baseline["markov_nats_per_quarter"] = nll_per_quarter(baseline["markov_nll_nats"], data, split)
    return result, baseline


def audio_test_metrics(run, data, model, split: str) -> tuple[dict, dict]:
    """NLL in nats and bits per sample and mu-law accuracy, scored only where the receptive field is
    full (a warm-up of receptive_field - 1 samples per crop is skipped), streamed over crops."""
    config = run.config
    dataset = audio_dataset(
        data.arrays[split],
        config,
        config.batch_size,
        shuffle=False,
        stride=config.crop_frames,
        max_windows=config.max_eval_windows,
    )
    forward = model.predict_on_batch  # one compiled function per model, kept by Keras
    skip = config.receptive_field - 1
    log_unigram = baselines.unigram_log_probabilities(
        [item[0] for item in data.arrays["train"]], data.representation.features
    )
    nll, unigram_nll, correct, previous_correct, count = 0.0, 0.0, 0, 0, 0
    for inputs, targets in dataset:
        logits = np.asarray(forward(inputs))[:, skip:]
        targets = targets.numpy()[:, skip:]
        nll += metrics.categorical_nll(logits, targets).sum()
        unigram_nll -= log_unigram[targets].sum()
        correct += int((logits.argmax(axis=-1) == targets).sum())
        previous_correct += int((inputs["codes"].numpy()[:, skip:] == targets).sum())
        count += targets.size
    nats = nll / count
    result = {
        "nll_nats_per_sample": nats,
        "nll_bits_per_sample": nats / math.log(2),
        "accuracy": correct / count,
        "samples_scored": count,
    }
    baseline = {
        "unigram_nll_bits_per_sample": unigram_nll / count / math.log(2),
        "previous_sample_accuracy": previous_correct / count,
    }
    return result, baseline


def source_label(source: str) -> str:
    """A file-name-safe label for another source: its readable name and a short hash of its full
    text, so that two sources whose readable names agree stay apart."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("._")[-80:] or "source"
    return f"{name}-{files.sha256_text(source)[:8]}"


def metrics_path(run_dir: str | Path, source: str | None = None) -> Path:
    """metrics.json for the run's own data; metrics-<source>-<hash>.json beside it for another
    source, so that evaluating elsewhere never overwrites the run's own result."""
    if source is None:
        return Path(run_dir) / "metrics.json"
    return Path(run_dir) / f"metrics-{source_label(source)}.json"
