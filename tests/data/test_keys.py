"""Key estimation as music21's `analyze("key")` does it, and pieces moved to C major or C minor."""

from musictf.data.keys import estimate_key, shift_to_c, transpose_to_c
from musictf.data.music import Note, Piece


def _scale(tonic: int, steps: tuple[int, ...]) -> tuple[Note, ...]:
    from music21 import pitch

    pitches = [tonic + step for step in steps] + [tonic + 12, tonic, tonic + 7]
    lengths = [1.0] * (len(steps) + 1) + [4.0, 4.0]
    onsets = [float(index) for index in range(len(steps) + 1)] + [len(steps) + 1.0] * 2
    return tuple(
        Note(p, onset, length, pitch.Pitch(midi=p).nameWithOctave)
        for p, onset, length in zip(pitches, onsets, lengths, strict=True)
    )


MAJOR, HARMONIC_MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 11)


def test_scales_get_their_key_and_move_to_c_keeping_their_mode():
    g_major = Piece("g", "g", "G major", _scale(67, MAJOR))
    assert estimate_key(g_major.notes) == (7, "major")
    in_c = transpose_to_c(g_major)
    assert (
        estimate_key(in_c.notes) == (0, "major") and in_c.notes[0].pitch == 72
    )  # G4 up a fourth, the nearer way
    a_minor = Piece("a", "a", "A minor", _scale(57, HARMONIC_MINOR))
    assert estimate_key(a_minor.notes) == (9, "minor")
    assert estimate_key(transpose_to_c(a_minor).notes) == (0, "minor")
    assert [shift_to_c(tonic) for tonic in (0, 5, 6, 7, 11)] == [0, -5, -6, 5, 1]


def test_a_piece_at_the_edge_of_the_keyboard_moves_the_other_way():
    high = Piece(
        "b", "b", "B major, top", _scale(96, MAJOR)
    )  # B6 scale up to B7 (107), then F#8 off the keys
    moved = transpose_to_c(high)
    assert estimate_key(moved.notes) == (0, "major")
    assert max(note.pitch for note in moved.notes) <= 108


def test_the_key_agrees_with_music21_on_bach_chorales():
    """music21's own analysis of the parsed score against ours from the cached notes."""
    from music21 import corpus

    from musictf.data.parse import notes_from_stream

    paths = corpus.getComposer("bach")[:8]
    for path in paths:
        score = corpus.parse(path)
        key = score.analyze("key")
        notes, _ = notes_from_stream(score)
        assert estimate_key(notes) == (key.tonic.pitchClass, key.mode), path
