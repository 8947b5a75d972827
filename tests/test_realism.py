"""The set-level tests of samples: excerpts, Yang and Lerch's features and overlaps, the classifier
two-sample test and realism."""

import numpy as np
import pytest
from scipy.stats import gaussian_kde

from musictf import realism
from musictf.data.music import Note


def note(pitch, onset, duration):
    return Note(pitch, float(onset), float(duration), "x")


def chorale_like(rng, quarters=32):
    """Four voices moving in steps, one chord per beat, on the beat: music of a kind."""
    voices = [48, 55, 64, 72]
    notes = []
    for beat in range(quarters):
        voices = [v + int(rng.choice([-2, -1, 0, 1, 2])) for v in voices]
        notes += [note(v, beat, 1) for v in voices]
    return notes


def noise(rng, quarters=32):
    """As many notes, at random places, pitches and lengths: what a count table plays."""
    return [
        note(int(rng.integers(40, 80)), rng.integers(0, quarters * 4) / 4, rng.integers(1, 6) / 4)
        for _ in range(quarters * 4)
    ]


def excerpts(make, count, seed, label):
    rng = np.random.default_rng(seed)
    return realism.cut_excerpts(((f"{label}{i}", make(rng), 32.0) for i in range(count)), 8.0)


def test_a_piece_is_cut_into_whole_excerpts_with_notes_clipped_at_their_end():
    notes = [note(60, 0, 1), note(62, 7.5, 2), note(64, 8, 1), note(65, 17, 1)]
    cut = realism.cut_excerpts([("p", notes, 18.0)], 8.0)
    assert [len(excerpt.notes) for excerpt in cut] == [2, 1]  # the last 2 quarters are dropped
    assert cut[0].notes[1] == note(62, 7.5, 0.5) and cut[1].notes[0] == note(64, 0, 1)
    assert {excerpt.group for excerpt in cut} == {"p"}


def test_the_features_of_a_known_excerpt():
    # a C major triad held two quarters, then a melody that leaps a fifth up and steps down
    notes = (note(60, 0, 2), note(64, 0, 2), note(67, 0, 2), note(67, 2, 1), note(74, 3, 1), note(72, 4, 1))
    features = realism.excerpt_features(realism.Excerpt("p", notes, 8.0))
    assert (
        features["pitch_count"][0] == 5
        and features["pitch_range"][0] == 14
        and features["note_count"][0] == 6
    )
    assert features["pitch_class_histogram"][[0, 2, 4, 7]] == pytest.approx([2 / 6, 1 / 6, 1 / 6, 2 / 6])
    assert features["average_inter_onset_interval"][0] == pytest.approx(4 / 3)  # onsets 0, 2, 3, 4
    assert features["note_length_histogram"][[1, 2]] == pytest.approx([3 / 6, 3 / 6])  # halves, quarters
    # sixteenth steps: 8 with three keys, 12 with one, 12 silent
    assert features["polyphony_histogram"][[0, 1, 3]] == pytest.approx([12 / 32, 12 / 32, 8 / 32])
    assert features["polyphony"][0] == pytest.approx((8 * 3 + 12) / 20)
    assert features["held_chord_rate"][0] == pytest.approx((7 + 3 + 3 + 3) / 31)  # held, no onset
    assert features["top_line_interval"][0] == pytest.approx((7 + 2) / 2)  # G4 -> D5 -> C5
    assert features["top_line_leap_rate"][0] == pytest.approx(1 / 2)
    assert features["bass_line_interval"][0] == pytest.approx((7 + 7 + 2) / 3)  # C4 G4 D5 C5


def test_an_empty_excerpt_has_zero_features_and_a_full_feature_vector():
    empty = realism.Excerpt("p", (), 8.0)
    features = realism.excerpt_features(empty)
    assert features["note_count"][0] == 0 and features["polyphony_histogram"][0] == 1.0
    assert np.isfinite(realism.classifier_features(empty)).all()


def test_the_classifier_features_do_not_change_when_the_music_is_transposed():
    rng = np.random.default_rng(3)
    notes = tuple(chorale_like(rng, 8))
    moved = tuple(note(n.pitch + 5, n.onset, n.duration) for n in notes)
    original = realism.classifier_features(realism.Excerpt("p", notes, 8.0))
    transposed = realism.classifier_features(realism.Excerpt("p", moved, 8.0))
    register = 2 + 1  # the mean pitch, its spread and the silent share close the vector
    assert original[:-register] == pytest.approx(transposed[:-register])


def test_the_binned_density_is_scipys_gaussian_kde_on_the_same_bandwidth():
    values = np.random.default_rng(0).gamma(2.0, 1.0, 3000)
    grid = np.linspace(-2, 14, 2048)
    bandwidth = 0.3
    ours = realism._density(values, grid, bandwidth)
    theirs = gaussian_kde(values, bw_method=bandwidth / values.std(ddof=1))(grid)
    assert np.abs(ours - theirs).max() < 0.01 * theirs.max()


def test_overlap_is_one_for_one_distribution_and_near_zero_for_distant_ones():
    rng = np.random.default_rng(1)
    same = realism.overlap_and_divergence(rng.normal(0, 1, 4000), rng.normal(0, 1, 4000))
    apart = realism.overlap_and_divergence(rng.normal(0, 1, 4000), rng.normal(8, 1, 4000))
    assert same[0] > 0.95 and same[1] < 0.02
    assert apart[0] < 0.02 and apart[1] > 5
    # constant distances (a feature every excerpt shares) overlap fully, without a failed estimate
    assert realism.overlap_and_divergence(np.zeros(50), np.zeros(80))[0] == pytest.approx(1.0)


def test_the_classifier_tells_distant_sets_apart_and_not_two_draws_of_one():
    rng = np.random.default_rng(2)
    groups = [str(i // 4) for i in range(200)]
    apart = realism.classifier_accuracy(
        rng.normal(0, 1, (200, 5)), groups, rng.normal(2, 1, (200, 5)), groups, 0
    )
    alike = realism.classifier_accuracy(
        rng.normal(0, 1, (200, 5)), groups, rng.normal(0, 1, (200, 5)), groups, 0
    )
    assert apart > 0.9 and 0.35 < alike < 0.65


def test_the_folds_split_by_piece_so_a_piece_cannot_be_recognised_across_them():
    """Both sets come from one distribution, but every piece has a fingerprint its excerpts share:
    folds that let a piece sit on both sides would score far above chance by recognising it."""
    rng = np.random.default_rng(4)
    fingerprints = rng.normal(0, 3, (100, 8))
    groups = [str(i // 5) for i in range(250)]
    reference = fingerprints[[i // 5 for i in range(250)]] + rng.normal(0, 0.1, (250, 8))
    other_groups = [str(50 + i // 5) for i in range(250)]
    other = fingerprints[[50 + i // 5 for i in range(250)]] + rng.normal(0, 0.1, (250, 8))
    assert realism.classifier_accuracy(reference, groups, other, other_groups, seed=0) < 0.7


def test_realism_runs_from_the_anchor_to_the_floor():
    assert realism.realism(0.99, 0.99, 0.55) == 0.0
    assert realism.realism(0.55, 0.99, 0.55) == 1.0
    assert realism.realism(0.77, 0.99, 0.55) == pytest.approx(0.5)
    assert realism.realism(0.8, 0.55, 0.55) is None and realism.realism(None, 0.9, 0.5) is None


def test_set_level_tests_place_music_near_the_floor_and_noise_at_the_anchor():
    test = excerpts(chorale_like, 30, 10, "test")
    train = excerpts(chorale_like, 30, 11, "train")
    like_music = excerpts(chorale_like, 30, 12, "sample")
    baseline = excerpts(noise, 30, 13, "baseline")
    result = realism.set_level_tests(test, train, like_music, baseline, seed=0)
    assert result["c2st"]["anchor"] >= realism.ANCHOR_MINIMUM and result["anchor_strong_enough"]
    assert result["c2st"]["floor"] < 0.7 and result["realism"] > 0.7
    assert result["overlap_at_or_above_baseline"] >= 13
    assert realism.summary(result).startswith("samples: C2ST accuracy")
    # the baseline's own samples as the model's: realism 0 (to the noise of the folds)
    as_baseline = realism.set_level_tests(test, train, excerpts(noise, 30, 14, "sample"), baseline, seed=0)
    assert as_baseline["realism"] < 0.15
    for feature in ("polyphony_histogram", "top_line_interval", "held_chord_rate"):
        row = as_baseline["overlap"][feature]
        assert row["model"]["overlap"] < 0.5 and row["baseline"]["overlap"] < 0.5


def test_one_long_piece_gives_at_most_its_share_of_excerpts():
    long_piece = realism.cut_excerpts([("long", [note(60, 0, 1)], 800.0)], 8.0)
    short = realism.cut_excerpts(((f"p{i}", [note(60, 0, 1)], 16.0) for i in range(10)), 8.0)
    drawn = realism._drawn(long_piece + short, seed=0)
    assert sum(excerpt.group == "long" for excerpt in drawn) == realism.PER_PIECE and len(drawn) == 8 + 20


def test_too_few_excerpts_are_said_not_scored():
    one = realism.cut_excerpts([("p", [note(60, 0, 1)], 8.0)], 8.0)
    assert "unavailable" in realism.set_level_tests(one, one, one, one, seed=0)
    assert realism.summary({"excerpts": {}}) is None


def test_chroma_agreement_follows_the_roll_and_chance_rotates_it():
    rate, hop = 8000, 1000
    roll = np.zeros((16, 88), np.uint8)
    roll[:8, 60 - 21] = 1  # C4 for 8 steps, then E4 and G4 for 8
    roll[8:, [64 - 21, 67 - 21]] = 1
    time = np.arange(16 * hop) / rate
    c4, e4 = 440 * 2 ** ((60 - 69) / 12), 440 * 2 ** ((64 - 69) / 12)
    following = np.where(time < 1.0, np.sin(2 * np.pi * c4 * time), np.sin(2 * np.pi * e4 * time))
    result = realism.chroma_agreement([0.5 * following], [roll], hop, rate)
    assert result["chroma_agreement"] == 1.0 and result["chroma_frames"] == 16
    # rotated, C is held by none of the 11 shifts of {C}; E is held by one shift of {E, G} (G -> E)
    assert result["chroma_chance"] == pytest.approx((8 * 0 + 8 * 1 / 11) / 16)
    wrong = realism.chroma_agreement([0.5 * np.sin(2 * np.pi * 370 * time)], [roll], hop, rate)  # F#4
    silent = realism.chroma_agreement([np.zeros(16 * hop)], [roll], hop, rate)
    assert wrong["chroma_agreement"] == 0.0 and silent["chroma_agreement"] == 0.0
    assert realism.chroma_progress(0.55, 0.1, 1.0) == pytest.approx(0.5)
    assert "0.50 of the way" in realism.audio_summary(
        {"chroma_agreement": 0.55, "chroma_chance": 0.1, "chroma_ceiling": 1.0, "chroma_progress": 0.5}
    )
