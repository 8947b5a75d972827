"""The count baselines: what a table of the train split's counts scores, and what it plays.

Every result stands beside these, fitted on the train split and scored on the model's own targets
(docs/evaluation-protocol.md):
- tokens: the unigram (add-one) and the bigram interpolated with it, its weight chosen on the
  valid split;
- piano rolls: an independent Bernoulli per flag, a first-order Markov chain per flag, and
  Boulanger-Lewandowski et al.'s per-flag N-gram, its history chosen on the valid split.

Samples of the count baselines, drawn like a model's (the same primers, length and seed), are the
anchor of the classifier two-sample test: a model's samples are a result only where they are
closer to the music than what a count table plays.
- piano rolls: the first-order Markov chain per flag (`markov_flag_probabilities`), each flag
  drawn given whether it was on one frame before, onset/sustain frames kept consistent as the
  models' are (`generate.consistent_onsets`);
- tokens: the bigram interpolated with the unigram (`token_bigram_baseline`'s weight), padding and
  unknown tokens never drawn.

Example:
    frames = sample_markov_rolls(data.arrays["train"], primes, length=64, seed=1, onset_sustain=True)
"""

from __future__ import annotations

import math

import numpy as np

from musictf.data.windows import padded
from musictf.metrics import bernoulli_frame_nll

# -- scoring ------------------------------------------------------------------------------------------


def unigram_log_probabilities(train_ids: list[np.ndarray], classes: int) -> np.ndarray:
    """Log-probabilities of the train split's id frequencies, add-one smoothed."""
    counts = np.bincount(np.concatenate(train_ids).astype(np.int64), minlength=classes).astype(np.float64) + 1
    return np.log(counts / counts.sum())


def token_baseline(
    train_ids: list[np.ndarray], targets: np.ndarray, vocabulary_size: int
) -> dict[str, float]:
    """Unigram model of the train split (add-one smoothed), scored on the same targets."""
    log_probabilities = unigram_log_probabilities(train_ids, vocabulary_size)
    return {
        "unigram_cross_entropy_nats": float(-log_probabilities[targets].mean()),
        "unigram_accuracy": float((targets == log_probabilities.argmax()).mean()),
    }


BIGRAM_WEIGHTS = tuple(np.round(np.arange(0.0, 1.0, 0.05), 2))  # the grid the validation split chooses from


def _bigram_and_unigram(
    train_ids: list[np.ndarray], vocabulary_size: int, previous: np.ndarray, following: np.ndarray
):
    """For each (previous, following) pair: the train split's maximum-likelihood bigram probability
    (None where `previous` never occurs in training, marked by NaN) and the add-one unigram of
    `following`. Pairs are counted sparsely, so a large vocabulary costs no V x V table."""
    unigram = np.exp(unigram_log_probabilities(train_ids, vocabulary_size))
    train_previous = np.concatenate([ids[:-1] for ids in train_ids]).astype(np.int64)
    train_following = np.concatenate([ids[1:] for ids in train_ids]).astype(np.int64)
    codes, counts = np.unique(train_previous * vocabulary_size + train_following, return_counts=True)
    totals = np.bincount(train_previous, minlength=vocabulary_size).astype(np.float64)
    wanted = previous.astype(np.int64) * vocabulary_size + following.astype(np.int64)
    pair_counts = np.zeros(len(wanted))
    if len(codes):
        found = np.minimum(np.searchsorted(codes, wanted), len(codes) - 1)
        pair_counts = np.where(codes[found] == wanted, counts[found], 0)
    context = totals[previous.astype(np.int64)]
    bigram = np.divide(pair_counts, context, out=np.full(len(wanted), np.nan), where=context > 0)
    return bigram, unigram[following.astype(np.int64)]


def _interpolated_nll(bigram: np.ndarray, unigram: np.ndarray, weight: float) -> np.ndarray:
    mixed = np.where(np.isnan(bigram), unigram, weight * np.nan_to_num(bigram) + (1 - weight) * unigram)
    return -np.log(mixed)


def bigram_weight(train_ids: list[np.ndarray], valid_ids: list[np.ndarray], vocabulary_size: int) -> float:
    """The interpolation weight of `BIGRAM_WEIGHTS` that scores best on the validation split's
    consecutive ids (0.5 without a validation split)."""
    pairs = [(ids[:-1], ids[1:]) for ids in valid_ids if len(ids) > 1]
    if not pairs:
        return 0.5
    valid = _bigram_and_unigram(
        train_ids, vocabulary_size, *(np.concatenate(part) for part in zip(*pairs, strict=True))
    )
    return min(BIGRAM_WEIGHTS, key=lambda w: _interpolated_nll(*valid, w).mean())


def token_bigram_baseline(
    train_ids: list[np.ndarray],
    valid_ids: list[np.ndarray],
    previous: np.ndarray,
    targets: np.ndarray,
    vocabulary_size: int,
) -> dict[str, float]:
    """A bigram interpolated with the unigram, P = w * bigram + (1 - w) * unigram (the unigram alone
    after a previous id training never had), with the weight w of `BIGRAM_WEIGHTS` that scores best
    on the validation split's consecutive ids, scored on the same (previous, target) pairs."""
    weight = bigram_weight(train_ids, valid_ids, vocabulary_size)
    nll = _interpolated_nll(*_bigram_and_unigram(train_ids, vocabulary_size, previous, targets), weight)
    return {"bigram_cross_entropy_nats": float(nll.mean()), "bigram_weight": float(weight)}


def markov_flag_probabilities(train_frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per flag, P(on | off one frame before) and P(on | on one frame before), from the train
    split's consecutive frames, add-one smoothed."""
    ones = np.ones(train_frames[0].shape[-1])
    on_after = [ones.copy(), ones.copy()]  # [after off, after on]: frames where the flag is on
    seen_after = [2 * ones, 2 * ones]
    for frames in train_frames:
        before, after = frames[:-1].astype(bool), frames[1:].astype(bool)
        for state in (0, 1):
            where = before == bool(state)
            on_after[state] = on_after[state] + (after & where).sum(axis=0)
            seen_after[state] = seen_after[state] + where.sum(axis=0)
    return on_after[0] / seen_after[0], on_after[1] / seen_after[1]


def markov_roll_baseline(
    train_frames: list[np.ndarray], previous: np.ndarray, targets: np.ndarray
) -> dict[str, float]:
    """First-order Markov chain per flag: P(flag on | it was on or off one frame before), from the
    train split's consecutive frames (add-one smoothed), scored on the same frames, given the frames
    before them. NLL in nats per frame, summed over the flags."""
    p_after_off, p_after_on = markov_flag_probabilities(train_frames)
    previous = previous.reshape(-1, previous.shape[-1]) > 0.5
    targets = targets.reshape(-1, targets.shape[-1]).astype(np.float64)
    p = np.where(previous, p_after_on, p_after_off)
    return {"markov_nll_nats": bernoulli_frame_nll(targets, np.log(p), np.log1p(-p))}


NGRAM_MAX_ORDER = 16  # the longest history the per-flag N-gram is offered (N = order + 1)


def _flag_histories(frames: np.ndarray, order: int) -> np.ndarray:
    """Each flag's previous `order` states packed as bits (bit i - 1: i frames before), for every
    frame from `order` on: (frames - order, flags) int64."""
    frames = np.asarray(frames).astype(np.int64)
    return sum(frames[order - i : len(frames) - i] << (i - 1) for i in range(1, order + 1))


def ngram_counts(train_frames: list[np.ndarray], order: int) -> tuple[np.ndarray, np.ndarray]:
    """Per flag and history of `order` states: (times on, times seen) over the train split's frames
    from the `order`-th on (so each piece is preceded by `order` silent frames: the context before
    a piece starts is "off"), (flags, 2 ** order) each."""
    flags = train_frames[0].shape[-1]
    width = 1 << order
    on, seen = np.zeros(flags * width), np.zeros(flags * width)
    offsets = np.arange(flags, dtype=np.int64) * width
    for frames in train_frames:
        if len(frames) <= order:
            continue
        index = (_flag_histories(frames, order) + offsets).ravel()
        on += np.bincount(
            index, weights=np.asarray(frames[order:], np.float64).ravel(), minlength=flags * width
        )
        seen += np.bincount(index, minlength=flags * width)
    return on.reshape(flags, width), seen.reshape(flags, width)


def _ngram_nll(counts, histories: np.ndarray, targets: np.ndarray) -> float:
    """Nats per frame, summed over the flags, of `targets` given their `histories` (add-one)."""
    on, seen = counts
    flags = np.arange(targets.shape[-1])[None, :]
    p = (on[flags, histories] + 1) / (seen[flags, histories] + 2)
    targets = targets.astype(np.float64)
    return bernoulli_frame_nll(targets, np.log(p), np.log1p(-p))


def ngram_order(train_frames: list[np.ndarray], valid_frames: list[np.ndarray]) -> int:
    """The history length of 1 to NGRAM_MAX_ORDER whose per-flag N-gram scores best on every valid
    frame; both splits preceded by NGRAM_MAX_ORDER silent frames (`windows.padded`). 1 (the Markov
    chain's) without a valid split. Each longer history adds one bit to the shorter one's codes."""
    if not valid_frames:
        return 1
    flags, start = train_frames[0].shape[-1], NGRAM_MAX_ORDER

    def shifted(frames_list, back: int) -> np.ndarray:  # each target's state `back` frames before
        return np.concatenate([np.asarray(f[start - back : len(f) - back], np.int64) for f in frames_list])

    train_targets, valid_targets = shifted(train_frames, 0), shifted(valid_frames, 0)
    train_codes, valid_codes = np.zeros_like(train_targets), np.zeros_like(valid_targets)
    offsets = np.arange(flags, dtype=np.int64)
    best, best_nll = 1, math.inf
    for order in range(1, NGRAM_MAX_ORDER + 1):
        train_codes += shifted(train_frames, order) << (order - 1)
        valid_codes += shifted(valid_frames, order) << (order - 1)
        width = 1 << order
        index = (train_codes + offsets * width).ravel()
        on = np.bincount(index, weights=train_targets.ravel().astype(np.float64), minlength=flags * width)
        seen = np.bincount(index, minlength=flags * width)
        counts = (on.reshape(flags, width), seen.reshape(flags, width))
        nll = _ngram_nll(counts, valid_codes, valid_targets)
        if nll < best_nll:
            best, best_nll = order, nll
    return best


def ngram_roll_baseline(
    train_frames: list[np.ndarray], histories: np.ndarray, targets: np.ndarray, order: int
) -> dict[str, float]:
    """BL2012's "Note N-Gram": each flag's own model of its state given its previous `order` states,
    add-one smoothed, fitted on the train split (each piece preceded by `order`
    silent frames, `windows.padded`) and scored on the same frames as the model, given their
    `histories` (`evaluate.scored_histories`). Nats per frame, summed over the flags."""
    targets = targets.reshape(-1, targets.shape[-1])
    nll = _ngram_nll(ngram_counts(train_frames, order), histories, targets)
    return {"ngram_nll_nats": nll, "ngram_order": order}


def roll_baseline(train_frames: list[np.ndarray], targets: np.ndarray) -> dict[str, float]:
    """Independent Bernoulli per flag with the train split's frequencies, scored on the same frames."""
    frames = np.concatenate(train_frames).astype(np.float64)
    p = np.clip(frames.mean(axis=0), 1e-6, 1 - 1e-6)
    targets = targets.reshape(-1, targets.shape[-1]).astype(np.float64)
    return {"independent_bernoulli_nll_nats": bernoulli_frame_nll(targets, np.log(p), np.log1p(-p))}


# -- samples ------------------------------------------------------------------------------------------


def named(name: str):
    """Gives a baseline sampler the name reports print for it (`sampler.baseline_name`)."""

    def decorate(function):
        function.baseline_name = name
        return function

    return decorate


def sample_markov_rolls(
    train_frames: list[np.ndarray], primes: np.ndarray, length: int, seed: int, onset_sustain: bool
) -> np.ndarray:
    """(B, length, F) frames continuing `primes` (B, P, F)."""
    import tensorflow as tf

    from musictf.generate import consistent_onsets

    after_off, after_on = markov_flag_probabilities(train_frames)
    rng = np.random.default_rng(seed)
    current = primes[:, -1].astype(np.float32)
    drawn = []
    for _ in range(length):
        probabilities = np.where(current > 0.5, after_on, after_off)
        frame = (rng.random(probabilities.shape) < probabilities).astype(np.float32)
        if onset_sustain:
            frame = consistent_onsets(tf.constant(frame), tf.constant(current)).numpy()
        drawn.append(frame)
        current = frame
    return np.stack(drawn, axis=1)


def sample_ngram_rolls(
    train_frames: list[np.ndarray],
    primes: np.ndarray,
    length: int,
    seed: int,
    onset_sustain: bool,
    order: int,
) -> np.ndarray:
    """(B, length, F) frames continuing `primes` (B, P, F) from the per-flag N-gram with `order`
    frames of history (add-one, each piece preceded by silence, as `ngram_counts` counts): each flag
    drawn given its own previous `order` states, the primer's first; onset/sustain frames kept
    consistent as the models' are."""
    import tensorflow as tf

    from musictf.generate import consistent_onsets

    on, seen = ngram_counts(padded(train_frames, order), order)
    p_on = (on + 1) / (seen + 2)
    rng = np.random.default_rng(seed)
    history = np.concatenate(
        [np.zeros((len(primes), order, primes.shape[-1]), np.float32), primes.astype(np.float32)], axis=1
    )[:, -order:]
    flags = np.arange(primes.shape[-1])[None, :]
    drawn = []
    for _ in range(length):
        codes = sum(history[:, -i].astype(np.int64) << (i - 1) for i in range(1, order + 1))
        frame = (rng.random(codes.shape) < p_on[flags, codes]).astype(np.float32)
        if onset_sustain:
            frame = consistent_onsets(tf.constant(frame), tf.constant(history[:, -1])).numpy()
        drawn.append(frame)
        history = np.concatenate([history[:, 1:], frame[:, None]], axis=1)
    return np.stack(drawn, axis=1)


def sample_bigram_tokens(
    train_ids: list[np.ndarray],
    valid_ids: list[np.ndarray],
    primes: np.ndarray,
    length: int,
    seed: int,
    vocabulary_size: int,
    blocked: list[int],
) -> np.ndarray:
    """(B, length) ids continuing `primes` (B, P)."""
    weight = bigram_weight(train_ids, valid_ids, vocabulary_size)
    unigram = np.exp(unigram_log_probabilities(train_ids, vocabulary_size))
    previous = np.concatenate([ids[:-1] for ids in train_ids]).astype(np.int64)
    following = np.concatenate([ids[1:] for ids in train_ids]).astype(np.int64)
    order = np.argsort(previous, kind="stable")  # the ids that follow each id, sorted once
    following, bounds = following[order], np.searchsorted(previous[order], np.arange(vocabulary_size + 1))
    rng = np.random.default_rng(seed)
    current = primes[:, -1].astype(np.int64)
    drawn = []
    for _ in range(length):
        chosen = []
        for token in current:
            counts = np.bincount(
                following[bounds[token] : bounds[token + 1]], minlength=vocabulary_size
            ).astype(np.float64)
            mixed = (
                weight * counts / counts.sum() + (1 - weight) * unigram if counts.sum() else unigram.copy()
            )
            mixed[blocked] = 0.0
            chosen.append(rng.choice(vocabulary_size, p=mixed / mixed.sum()))
        current = np.asarray(chosen, np.int64)
        drawn.append(current)
    return np.stack(drawn, axis=1).astype(np.int32)


@named("interpolated bigram")
def token_bigram_samples(data, primes: np.ndarray, length: int, seed: int) -> np.ndarray:
    """Experiment 1's count baseline (its `baseline_samples` slot): continuations of `primes` drawn
    from the interpolated bigram of the train split, padding and unknown tokens never drawn."""
    from musictf.generate import blocked_token_ids

    representation = data.representation
    return sample_bigram_tokens(
        data.arrays["train"],
        data.arrays["valid"],
        primes,
        length,
        seed,
        representation.features,
        blocked_token_ids(representation.vocabulary),
    )


@named("per-key N-gram")
def roll_ngram_samples(data, primes: np.ndarray, length: int, seed: int) -> np.ndarray:
    """The roll experiments' count baseline (their `baseline_samples` slot): continuations of
    `primes` drawn from the per-flag N-gram of the train split, its history length chosen on the
    valid split as the scored baseline's is (`ngram_order`), the strongest count baseline."""
    train = data.arrays["train"]
    valid = padded(data.arrays["valid"], NGRAM_MAX_ORDER) if data.arrays["valid"] else []
    order = ngram_order(padded(train, NGRAM_MAX_ORDER), valid)
    onset_sustain = data.representation.encoding == "onset_sustain"
    return sample_ngram_rolls(train, primes, length, seed, onset_sustain, order)


@named("first-order Markov chain per key")
def roll_markov_samples(data, primes: np.ndarray, length: int, seed: int) -> np.ndarray:
    """The roll experiments' count baseline (their `baseline_samples` slot): continuations of
    `primes` drawn from the first-order Markov chain per flag of the train split."""
    return sample_markov_rolls(
        data.arrays["train"], primes, length, seed, data.representation.encoding == "onset_sustain"
    )
