"""The draws every sampler uses: top-k and top-p masks, temperature, and reproducible seeds."""

import numpy as np
import pytest
import tensorflow as tf

from musictf.generate import FrameChooser, sample_bernoulli, sample_categorical

PROBABILITIES = np.array([0.4, 0.3, 0.2, 0.1])
ROWS = 4000


def _draws(top_k=0, top_p=1.0, temperature=1.0, seed=(3, 0)):
    logits = np.tile(np.log(PROBABILITIES), (ROWS, 1)).astype("float32")
    ids = sample_categorical(tf.constant(logits), tf.constant(seed, tf.int64), temperature, top_k, top_p).numpy()
    return np.bincount(ids, minlength=len(PROBABILITIES)) / ROWS


@pytest.mark.parametrize("top_k,top_p,kept", [
    (0, 1.0, [0, 1, 2, 3]),
    (2, 1.0, [0, 1]),
    (1, 1.0, [0]),
    (0, 0.65, [0, 1]),  # the nucleus: ids whose preceding mass is below p (0, 0.4 < 0.65; 0.7 is not)
    (0, 0.75, [0, 1, 2]),
    (3, 0.65, [0, 1]),
])
def test_top_k_and_top_p_keep_exactly_the_allowed_ids_in_their_renormalised_proportions(top_k, top_p, kept):
    frequencies = _draws(top_k, top_p)
    assert sorted(np.flatnonzero(frequencies)) == kept
    expected = np.zeros(len(PROBABILITIES))
    expected[kept] = PROBABILITIES[kept] / PROBABILITIES[kept].sum()
    np.testing.assert_allclose(frequencies, expected, atol=0.03)


def test_temperature_sharpens_and_a_seed_repeats_its_draws():
    sharpened = PROBABILITIES**4 / (PROBABILITIES**4).sum()  # temperature 1/4: p^4, renormalised (0.723, ...)
    np.testing.assert_allclose(_draws(temperature=0.25), sharpened, atol=0.03)
    np.testing.assert_array_equal(_draws(seed=(5, 1)), _draws(seed=(5, 1)))
    assert not np.array_equal(_draws(seed=(5, 1)), _draws(seed=(5, 2)))


def test_bernoulli_flags_follow_their_probabilities_and_blocked_tokens_never_appear():
    logits = tf.constant(np.tile(np.log([0.1 / 0.9, 0.5 / 0.5, 0.9 / 0.1]), (ROWS, 1)).astype("float32"))
    rates = sample_bernoulli(logits, tf.constant([1, 2], tf.int64)).numpy().mean(axis=0)
    np.testing.assert_allclose(rates, [0.1, 0.5, 0.9], atol=0.03)
    chooser = FrameChooser("token", blocked=[0, 1])
    ids = chooser(tf.constant(np.tile(np.log(PROBABILITIES), (ROWS, 1)).astype("float32")), None,
                  tf.constant([4, 0], tf.int64)).numpy()
    assert set(ids.tolist()) == {2, 3}
