"""The draws every sampler uses: top-k and top-p masks, temperature, and reproducible seeds."""

import numpy as np
import pytest
import tensorflow as tf

from musictf.generate import FrameChooser, sample_bernoulli, sample_categorical

PROBABILITIES = np.array([0.4, 0.3, 0.2, 0.1])
ROWS = 4000


def _draws(top_k=0, top_p=1.0, temperature=1.0, seed=(3, 0)):
    logits = np.tile(np.log(PROBABILITIES), (ROWS, 1)).astype("float32")
    ids = sample_categorical(
        tf.constant(logits), tf.constant(seed, tf.int64), temperature, top_k, top_p
    ).numpy()
    return np.bincount(ids, minlength=len(PROBABILITIES)) / ROWS


@pytest.mark.parametrize(
    "top_k,top_p,kept",
    [
        (0, 1.0, [0, 1, 2, 3]),
        (2, 1.0, [0, 1]),
        (1, 1.0, [0]),
        (0, 0.65, [0, 1]),  # the nucleus: ids whose preceding mass is below p (0, 0.4 < 0.65; 0.7 is not)
        (0, 0.75, [0, 1, 2]),
        (3, 0.65, [0, 1]),
    ],
)
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


def test_a_temperature_per_id_scales_each_logit_by_its_own():
    # ids 0-1 at temperature 1/2 (p^2), ids 2-3 at 1: weights 0.16, 0.09, 0.2, 0.1, renormalised
    weights = np.array([0.4**2, 0.3**2, 0.2, 0.1])
    per_id = np.array([0.5, 0.5, 1.0, 1.0], np.float32)
    np.testing.assert_allclose(_draws(temperature=per_id), weights / weights.sum(), atol=0.03)
    np.testing.assert_array_equal(_draws(temperature=np.full(4, 0.25, np.float32)), _draws(temperature=0.25))


def test_bernoulli_flags_follow_their_probabilities_and_blocked_tokens_never_appear():
    logits = tf.constant(np.tile(np.log([0.1 / 0.9, 0.5 / 0.5, 0.9 / 0.1]), (ROWS, 1)).astype("float32"))
    rates = sample_bernoulli(logits, tf.constant([1, 2], tf.int64)).numpy().mean(axis=0)
    np.testing.assert_allclose(rates, [0.1, 0.5, 0.9], atol=0.03)
    chooser = FrameChooser("token", blocked=[0, 1])
    ids = chooser(
        tf.constant(np.tile(np.log(PROBABILITIES), (ROWS, 1)).astype("float32")),
        None,
        tf.constant([4, 0], tf.int64),
    ).numpy()
    assert set(ids.tolist()) == {2, 3}


def test_flag_by_flag_draws_follow_the_within_frame_conditionals():
    """sample_bernoulli_autoregressive: with a zero kernel it draws exactly sample_bernoulli's flags;
    with W[0, 1] = 4, flag 1 is on with sigmoid(0 + 4) after flag 0, and sigmoid(0) without it."""
    from musictf.generate import sample_bernoulli_autoregressive

    logits = tf.zeros((ROWS, 3))
    seed = tf.constant((5, 1), tf.int64)
    independent = sample_bernoulli(logits, seed).numpy()
    np.testing.assert_array_equal(
        sample_bernoulli_autoregressive(logits, tf.zeros((3, 3)), seed).numpy(), independent
    )
    kernel = np.zeros((3, 3), np.float32)
    kernel[0, 1] = 4.0
    frames = sample_bernoulli_autoregressive(logits, tf.constant(kernel), seed).numpy()
    after_on, after_off = frames[frames[:, 0] == 1, 1].mean(), frames[frames[:, 0] == 0, 1].mean()
    assert after_on == pytest.approx(1 / (1 + np.exp(-4)), abs=0.03)
    assert after_off == pytest.approx(0.5, abs=0.04)
    assert frames[:, 2].mean() == pytest.approx(0.5, abs=0.04)


def test_the_within_frame_term_reads_only_lower_flags_of_the_same_frame():
    from musictf.layers import FrameAutoregression

    layer = FrameAutoregression()
    layer.build((None, None, 5))
    layer.kernel.assign(np.arange(25, dtype=np.float32).reshape(5, 5) + 1)
    frames = np.zeros((1, 1, 5), np.float32)
    frames[0, 0, 2] = 1.0
    logits = layer(frames).numpy()[0, 0]
    np.testing.assert_array_equal(logits[:3], 0.0)  # flags 0-2 are not informed by flag 2
    np.testing.assert_array_equal(logits[3:], [14.0, 15.0])  # W[2, 3], W[2, 4]


def test_the_voice_terms_count_the_keys_sounding_below_and_the_draw_uses_the_same_conditionals():
    """With voice_bins and voice_change_bins, flag k's logit gains C[k, min(n, bins - 1)] and
    D[k, clip(n - p, -B, B) + B], n the keys sounding below it in the frame and p those below it in
    the frame before (onset/sustain rolls count a key by its sustain flag), in the layer and in the
    flag-by-flag draw alike: a drawn frame is exactly the one its own conditionals give, and its
    log-probability is theirs."""
    from musictf.generate import hash_uniform, within_frame_draw
    from musictf.layers import FrameAutoregression

    rng = np.random.default_rng(1)
    keys, bins, change_bins, rows = 5, 3, 1, 500
    features = 2 * keys
    layer = FrameAutoregression(voice_bins=bins, voice_change_bins=change_bins, channels=2)
    layer.build([(None, features), (None, features)])
    layer.kernel.assign(rng.normal(0, 1, (features, features)).astype(np.float32))
    layer.voice_kernel.assign(rng.normal(0, 3, (features, bins)).astype(np.float32))
    layer.voice_change_kernel.assign(rng.normal(0, 3, (features, 2 * change_bins + 1)).astype(np.float32))
    frames = (rng.random((rows, features)) < 0.5).astype(np.float32)
    previous = (rng.random((rows, features)) < 0.5).astype(np.float32)
    kernel = np.triu(np.asarray(layer.kernel), 1)
    count, change = np.asarray(layer.voice_kernel), np.asarray(layer.voice_change_kernel)

    def by_loop(frames, logits):
        out = np.zeros_like(frames)
        for k in range(features):
            below, before = frames[:, 1:k:2].sum(axis=1), previous[:, 1:k:2].sum(axis=1)
            voices = np.minimum(below, bins - 1).astype(int)
            moved = (np.clip(below - before, -change_bins, change_bins) + change_bins).astype(int)
            out[:, k] = logits[:, k] + frames[:, :k] @ kernel[:k, k] + count[k, voices] + change[k, moved]
        return out

    zeros = np.zeros_like(frames)
    np.testing.assert_allclose(np.asarray(layer([frames, previous])), by_loop(frames, zeros), atol=1e-5)
    logits = rng.normal(0, 1, (rows, features)).astype(np.float32)
    seed = tf.constant((4, 2), tf.int64)
    drawn, log_probability = within_frame_draw(layer)(
        tf.constant(logits), seed, 1.0, log_probability=True, previous=tf.constant(previous)
    )
    drawn = drawn.numpy()
    conditioned = by_loop(drawn, logits)
    uniform = hash_uniform(tf.shape(logits), seed[0], seed[1]).numpy()
    free = (uniform < 1 / (1 + np.exp(-conditioned))).astype(np.float32)
    # a sustain flag follows its onset, and the frame before where there is none (the roll's rules)
    onset, held = drawn[:, 0::2], previous[:, 1::2]
    free[:, 1::2] = np.where(onset == 1, 1.0, np.where(held == 0, 0.0, free[:, 1::2]))
    np.testing.assert_array_equal(drawn, free)
    expected = (drawn * -np.logaddexp(0, -conditioned) + (1 - drawn) * -np.logaddexp(0, conditioned)).sum(1)
    np.testing.assert_allclose(log_probability.numpy(), expected, rtol=1e-4)


def test_an_onset_sustain_draw_stays_within_the_frames_a_roll_can_hold():
    """With the frame before, a key's sustain flag is on wherever its onset is drawn, off where the
    key was silent and no onset is drawn, and drawn only for a key that sounded before; so
    `consistent_onsets` changes nothing, and each flag after it was drawn given the frame kept."""
    from musictf.generate import consistent_onsets, within_frame_draw
    from musictf.layers import FrameAutoregression

    rng = np.random.default_rng(3)
    keys, rows = 88, 64
    layer = FrameAutoregression(voice_bins=3, channels=2)
    layer.build((None, 2 * keys))
    logits = tf.constant(rng.normal(0, 2, (rows, 2 * keys)).astype(np.float32))
    previous = np.zeros((rows, keys, 2), np.float32)
    previous[:, ::3, 1] = 1.0  # every third key sounded in the frame before
    previous = tf.constant(previous.reshape(rows, -1))
    drawn = within_frame_draw(layer)(logits, tf.constant((1, 2), tf.int64), 1.0, previous=previous)
    frame = drawn.numpy().reshape(rows, keys, 2)
    onset, sustain, held = frame[..., 0], frame[..., 1], previous.numpy().reshape(rows, keys, 2)[..., 1]
    assert (sustain[onset == 1] == 1).all()
    assert (sustain[(onset == 0) & (held == 0)] == 0).all()
    assert 0 < sustain[(onset == 0) & (held == 1)].mean() < 1  # drawn, where the key sounded before
    np.testing.assert_array_equal(consistent_onsets(drawn, previous).numpy(), drawn.numpy())


def _nade_logits_by_loop(parameters, frames, input_kernel, output_kernel):
    """RNN-NADE's conditionals written as the loop of Larochelle and Murray (2011), in numpy."""
    features = input_kernel.shape[0]
    visible, activation = parameters[:, :features], parameters[:, features:].copy()
    logits = np.zeros_like(visible)
    for k in range(features):
        logits[:, k] = visible[:, k] + (1 / (1 + np.exp(-activation))) @ output_kernel[k]
        activation += frames[:, k : k + 1] * input_kernel[k][None, :]
    return logits


def test_the_nade_scores_each_flag_given_the_flags_below_it_and_draws_from_the_same_conditionals():
    """FrameNADE's logits equal the per-key loop's, flag k never reads flags k and above, and a
    frame drawn by sample_bernoulli_nade is exactly the one its own conditionals give: flag k is on
    where the draw's uniform number is below sigmoid(logit_k of the drawn flags below k)."""
    from musictf.generate import hash_uniform, sample_bernoulli_nade
    from musictf.layers import FrameNADE

    rng = np.random.default_rng(0)
    features, units, rows = 6, 4, 2000
    parameters = rng.normal(size=(rows, features + units)).astype(np.float32)
    frames = (rng.random((rows, features)) < 0.4).astype(np.float32)
    layer = FrameNADE(units)
    layer.build([(None, features + units), (None, features)])
    layer.output_kernel.assign(rng.normal(size=(features, units)).astype(np.float32) * 2)
    input_kernel, output_kernel = (np.asarray(kernel) for kernel in layer.kernels())
    logits = np.asarray(layer([parameters, frames]))
    np.testing.assert_allclose(
        logits, _nade_logits_by_loop(parameters, frames, input_kernel, output_kernel), atol=1e-5
    )
    flipped = frames.copy()
    flipped[:, 3] = 1 - flipped[:, 3]
    difference = np.asarray(layer([parameters, flipped])) - logits
    np.testing.assert_array_equal(difference[:, :4], 0.0)
    assert np.abs(difference[:, 4:]).max() > 0.1

    seed = tf.constant((7, 2), tf.int64)
    drawn = sample_bernoulli_nade(parameters, *layer.kernels(), seed).numpy()
    uniform = hash_uniform(tf.constant((rows, features)), seed[0], seed[1]).numpy()
    expected = uniform < 1 / (1 + np.exp(-np.asarray(layer([parameters, drawn]))))
    np.testing.assert_array_equal(drawn, expected.astype(np.float32))
    assert 0.1 < drawn.mean() < 0.9


def test_a_drawn_sustain_holds_a_sounding_key_and_never_starts_a_note():
    from musictf.data.pianoroll import NUM_KEYS
    from musictf.generate import consistent_onsets

    def frame(onsets=(), sustains=()):
        flags = np.zeros((1, NUM_KEYS, 2), np.float32)
        flags[0, list(onsets), 0] = 1
        flags[0, list(sustains), 1] = 1
        return tf.constant(flags.reshape(1, -1))

    previous = frame(onsets=[5], sustains=[5])  # key 5 sounds; key 9 does not
    drawn = consistent_onsets(frame(onsets=[2], sustains=[5, 9]), previous).numpy().reshape(NUM_KEYS, 2)
    assert sorted(np.flatnonzero(drawn[:, 0])) == [2]  # only the drawn onset starts a note
    assert sorted(np.flatnonzero(drawn[:, 1])) == [2, 5]  # key 5 is held; key 9's sustain is dropped


def test_long_samples_are_drawn_in_chunks_with_the_same_draws(monkeypatch):
    """D5: one compiled loop of millions of steps ignored Ctrl-C; longer samples now come in chunks
    that carry the state, with exactly the draws of one loop."""
    from musictf import generate
    from musictf.experiments import get_experiment

    experiment = get_experiment("2")
    config = experiment.load_config("smoke")
    model = experiment.build_model(config, 176)
    sampler = experiment.sampler(model, config, None)
    primes = np.random.default_rng(0).random((2, config.seq_len, 176)) < 0.05
    whole = sampler.generate(primes.astype("float32"), 23, seed=5)
    monkeypatch.setattr(generate, "CHUNK_STEPS", 5)
    chunked = sampler.generate(primes.astype("float32"), 23, seed=5)
    np.testing.assert_array_equal(chunked, whole)


def test_samples_that_would_not_fit_in_memory_are_refused_before_drawing(monkeypatch):
    from musictf import generate
    from musictf.errors import MusicTFError

    monkeypatch.setattr(generate, "available_memory_bytes", lambda: 8 * 2**30)
    generate.require_memory(2**30, "small samples")
    with pytest.raises(MusicTFError, match=r"1 samples of 10000000 steps need about 21.1 GB, more than half"):
        generate.require_memory(1 * 10_000_000 * 176 * 4 * 3, "1 samples of 10000000 steps")


def test_a_drawn_frame_carries_its_log_probability_and_candidates_keep_the_most_probable():
    """The log-probability returned with a flag-by-flag draw is the model's own (temperature 1),
    summed over the flags; with `candidates`, the chooser keeps, for each row, the most probable of
    that many frames drawn for it."""
    from musictf.generate import FrameChooser, sample_bernoulli_autoregressive, within_frame_draw
    from musictf.layers import FrameAutoregression

    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(0, 1.5, (ROWS, 4)).astype("float32"))
    kernel = np.triu(rng.normal(0, 2, (4, 4)), 1).astype("float32")
    frames, log_probability = sample_bernoulli_autoregressive(
        logits, tf.constant(kernel), tf.constant((3, 1), tf.int64), temperature=0.8, log_probability=True
    )
    frames = frames.numpy()
    conditioned = logits.numpy() + frames @ kernel  # each flag's logit given the flags below it
    expected = (frames * -np.logaddexp(0, -conditioned) + (1 - frames) * -np.logaddexp(0, conditioned)).sum(1)
    np.testing.assert_allclose(log_probability.numpy(), expected, rtol=1e-5)

    layer = FrameAutoregression()
    layer.build((None, None, 4))
    layer.kernel.assign(kernel)
    draw = within_frame_draw(layer)
    seed = tf.constant((9, 2), tf.int64)
    chosen = FrameChooser("bernoulli", autoregression=draw, candidates=5)(logits[:8], None, seed).numpy()
    tiled = tf.reshape(tf.repeat(logits[:8, None], 5, axis=1), [-1, 4])
    candidates, scores = draw(tiled, seed, 1.0, log_probability=True)
    candidates, scores = candidates.numpy().reshape(8, 5, 4), scores.numpy().reshape(8, 5)
    np.testing.assert_array_equal(chosen, candidates[np.arange(8), scores.argmax(axis=1)])
    assert len({tuple(row) for row in candidates.reshape(-1, 4)}) > 1  # the candidates differ
