"""The file-level split: train, valid and test by a seeded hash of each file's id, or the source's own.

Example:
    splits = split_pieces(corpus.pieces, seed=1234, valid_fraction=0.1, test_fraction=0.1)
    splits = split_by_source(pieces, folder_split([piece.file_id for piece in pieces]), 1234, 0.1, 0.1)
"""

from __future__ import annotations

from musictf import files
from musictf.data.music import Piece

SPLITS = ("train", "valid", "test")


def _unit_hash(file_id: str, seed: int) -> float:
    return int(files.sha256_text(f"{seed}\0{file_id}"), 16) / 2.0**256


def split_files(
    file_ids: list[str], seed: int, valid_fraction: float, test_fraction: float
) -> dict[str, str]:
    """file id -> split. Each file's split depends only on its id and the seed, so adding files
    never moves existing ones; in corpora too small to fill a split by chance, the train files
    with the lowest hash values fill the empty valid/test split."""
    ranked = sorted(set(file_ids), key=lambda file_id: _unit_hash(file_id, seed))
    assignment = {}
    for file_id in ranked:
        value = _unit_hash(file_id, seed)
        if value < test_fraction:
            assignment[file_id] = "test"
        elif value < test_fraction + valid_fraction:
            assignment[file_id] = "valid"
        else:
            assignment[file_id] = "train"
    for split, fraction in (("test", test_fraction), ("valid", valid_fraction)):
        if fraction > 0 and split not in assignment.values() and len(ranked) >= 3:
            trainees = [file_id for file_id in ranked if assignment[file_id] == "train"]
            if len(trainees) > 1:
                assignment[trainees[0]] = split
    return assignment


def split_pieces(
    pieces: list[Piece], seed: int, valid_fraction: float, test_fraction: float
) -> dict[str, list[Piece]]:
    assignment = split_files([piece.file_id for piece in pieces], seed, valid_fraction, test_fraction)
    splits: dict[str, list[Piece]] = {split: [] for split in SPLITS}
    for piece in pieces:
        splits[assignment[piece.file_id]].append(piece)
    return splits


def folder_split(file_ids: list[str]) -> dict[str, str] | None:
    """file id -> split for a folder whose files all sit in train/, valid/ and test/ subfolders
    (train/ among them): a source that brings its own split. None for any other folder."""
    folders = {file_id: file_id.split("/", 1)[0] for file_id in file_ids}
    return folders if set(folders.values()) <= set(SPLITS) and "train" in folders.values() else None


def split_by_source(
    pieces: list[Piece],
    own_split: dict[str, str] | None,
    seed: int,
    valid_fraction: float,
    test_fraction: float,
) -> dict[str, list[Piece]]:
    """The source's own split where it has one (file id -> split), else `split_pieces`."""
    if own_split is None:
        return split_pieces(pieces, seed, valid_fraction, test_fraction)
    return {split: [piece for piece in pieces if own_split[piece.file_id] == split] for split in SPLITS}
