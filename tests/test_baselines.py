"""Samples of the count baselines follow the counts they were fitted on."""

import numpy as np

from musictf.baselines import markov_flag_probabilities, sample_bigram_tokens, sample_markov_rolls


def test_markov_roll_samples_follow_the_train_split_transitions():
    # flag 0 alternates on/off; flag 1 is always off; 2,000 frames make the add-one smoothing small
    frames = np.zeros((2000, 2), np.uint8)
    frames[::2, 0] = 1
    after_off, after_on = markov_flag_probabilities([frames])
    assert after_off[0] > 0.99 and after_on[0] < 0.01 and after_off[1] < 0.01
    primes = np.zeros((300, 4, 2), np.float32)
    drawn = sample_markov_rolls([frames], primes, length=6, seed=0, onset_sustain=False)
    assert drawn.shape == (300, 6, 2)
    assert (
        drawn[:, ::2, 0].mean() > 0.97 and drawn[:, 1::2, 0].mean() < 0.03
    )  # off, on, off, ... after an off primer
    assert drawn[..., 1].mean() < 0.02
    again = sample_markov_rolls([frames], primes, length=6, seed=0, onset_sustain=False)
    np.testing.assert_array_equal(drawn, again)


def test_bigram_token_samples_follow_the_pairs_and_never_draw_blocked_ids():
    train = [np.array([2, 3] * 200 + [4], np.int32)]
    valid = [np.array([2, 3, 2, 3], np.int32)]
    primes = np.full((50, 3), 2, np.int32)
    drawn = sample_bigram_tokens(train, valid, primes, length=8, seed=1, vocabulary_size=5, blocked=[0, 1])
    assert drawn.shape == (50, 8) and not np.isin(drawn, [0, 1]).any()
    assert (drawn[:, 0] == 3).mean() > 0.8  # after 2 the train split always had 3


def test_the_ngram_sampler_continues_each_flags_own_history():
    """A flag that is on every third frame in training, drawn from a per-flag N-gram of order 3, keeps
    that period from the primer on (each flag given its own last three states), where the Markov
    chain cannot; a flag never on stays off."""
    from musictf.baselines import sample_ngram_rolls

    piece = np.zeros((300, 2), np.float32)
    piece[2::3, 0] = 1
    primes = piece[None, :6]
    drawn = sample_ngram_rolls([piece], primes, 60, seed=1, onset_sustain=False, order=3)[0]
    expected = np.tile([0, 0, 1], 20)  # the primer ends on an "on" frame
    assert (drawn[:, 0] == expected).mean() > 0.95
    assert drawn[:, 1].sum() == 0
