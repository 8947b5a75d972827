"""Samples of the count baselines, drawn like a model's: the same primers, length and seed.

A model's samples are a result only where they are closer to the music than what a count table
plays. So every symbolic run also draws continuations from its strongest baseline, fitted on the
train split:
- piano rolls: the first-order Markov chain per flag (`metrics.markov_flag_probabilities`), each
  flag drawn given whether it was on one frame before, onset/sustain frames kept consistent as the
  models' are (`generate.consistent_onsets`);
- tokens: the bigram interpolated with the unigram (`metrics.token_bigram_baseline`'s weight),
  padding and unknown tokens never drawn.

Example:
    frames = sample_markov_rolls(data.arrays["train"], primes, length=64, seed=1, onset_sustain=True)
"""

from __future__ import annotations

import numpy as np

from musictf import metrics


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

    after_off, after_on = metrics.markov_flag_probabilities(train_frames)
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
    weight = metrics.bigram_weight(train_ids, valid_ids, vocabulary_size)
    unigram = np.exp(metrics.unigram_log_probabilities(train_ids, vocabulary_size))
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


@named("first-order Markov chain per key")
def roll_markov_samples(data, primes: np.ndarray, length: int, seed: int) -> np.ndarray:
    """The roll experiments' count baseline (their `baseline_samples` slot): continuations of
    `primes` drawn from the first-order Markov chain per flag of the train split."""
    return sample_markov_rolls(
        data.arrays["train"], primes, length, seed, data.representation.encoding == "onset_sustain"
    )
