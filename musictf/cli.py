"""The thin command line: every command parses flags and calls one library function.

User errors (MusicTFError, bad flags) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from musictf.errors import MusicTFError

NOT_YET = {
    "tune": "Keras Tuner searches are not implemented yet (issue #5)",
    "report": "the report builder is not implemented yet (issue #6)",
    "bench": "the benchmark harness is not implemented yet (issue #8)",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment number 1-4 (or its name, e.g. polyphonic)")
    parser.add_argument("--preset", default="cpu", help="preset from experiments/eN_*.toml: smoke, cpu, paper, ... (default: cpu)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field, e.g. --set units=128; repeatable")
    parser.add_argument("--source", help="music21:<composer> or a folder of MIDI/MusicXML/ABC/kern files")
    parser.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker", "tpu", "auto"],
                        help="tf.distribute strategy (default: default)")
    parser.add_argument("--run-dir", help="run directory; rerunning with the same one resumes an interrupted run")
    parser.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one matches")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="musictf", description="Reproducible deep-learning music-generation experiments.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    data = commands.add_parser("data", help="parse a corpus, print its statistics and write the ingest report",
                               description="Parse a corpus (cached), print statistics and skipped files.")
    data.add_argument("--source", default="music21:bach", help="music21:<composer or path> or a folder (default: music21:bach)")
    data.add_argument("--representation", choices=["tokens", "pianoroll"], default="tokens",
                      help="statistics for note tokens or piano rolls (default: tokens)")
    data.add_argument("--token-mode", choices=["duration", "pitch"], default="duration",
                      help="tokens with slice lengths and rests, or the original's pitch-only tokens")
    data.add_argument("--steps-per-quarter", type=int, default=4, help="piano-roll grid (default: 4)")
    data.add_argument("--max-files", type=int, default=0, help="use only the first N files (default: all)")
    data.add_argument("--workers", type=int, default=0, help="parser processes (default: one per core)")
    data.add_argument("--split-seed", type=int, default=1234, help="seed of the file-level split (default: 1234)")

    train = commands.add_parser("train", help="train an experiment into a run directory",
                                description="Train experiment N on a preset. Rerunning the same command resumes.")
    _add_experiment_arguments(train)

    run = commands.add_parser("run", help="train, generate samples and evaluate (what `make experiment-N` does)",
                              description="Train, then generate samples, then evaluate on the test split.")
    _add_experiment_arguments(run)

    evaluate = commands.add_parser("evaluate", help="write metrics.json for a run's test split",
                                   description="Evaluate a run on its test split under the common protocol.")
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--source", help="evaluate on another source (its vocabulary must fit)")
    evaluate.add_argument("--checkpoint", choices=["best", "last"], default="best")

    generate = commands.add_parser("generate", help="sample MIDI files (and piano-roll PNGs) from a run",
                                   description="Sample pieces from a trained run with an incremental compiled loop.")
    generate.add_argument("run", help="run directory")
    generate.add_argument("--num", type=int, help="number of pieces (default: the run's num_samples)")
    generate.add_argument("--length", type=int, help="tokens or time steps per piece after the primer")
    generate.add_argument("--temperature", type=float, help="divides the logits; lower is more conservative")
    generate.add_argument("--top-k", type=int, help="sample from the k most likely tokens; 0 disables")
    generate.add_argument("--top-p", type=float, help="nucleus sampling cutoff; 1.0 disables")
    generate.add_argument("--prime", help="a MIDI/MusicXML/ABC/kern file whose opening primes the model "
                                          "(default: a test-split piece)")
    generate.add_argument("--seed", type=int, help="sampling seed (default: the run's seed)")
    generate.add_argument("--out", help="output folder (default: RUN/samples)")
    generate.add_argument("--checkpoint", choices=["best", "last"], default="best")

    for name, message in NOT_YET.items():
        commands.add_parser(name, help=f"({message})", add_help=True, description=message)
    return parser


def _command_data(args) -> int:
    from musictf.data import corpus as corpus_module
    from musictf.data.representation import RollRepresentation, TokenRepresentation

    corpus = corpus_module.load_corpus(args.source, max_files=args.max_files, workers=args.workers or None)
    print(corpus.report.summary())
    splits = corpus_module.split_pieces(corpus.pieces, args.split_seed, 0.1, 0.1)
    if args.representation == "tokens":
        representation = TokenRepresentation(args.token_mode).fit(splits["train"])
        unit = f"{args.token_mode} tokens"
    else:
        representation = RollRepresentation(args.steps_per_quarter)
        unit = f"frames at {args.steps_per_quarter} steps per quarter"
    sizes = {split: sum(len(representation.encode(piece)) for piece in pieces) for split, pieces in splits.items()}
    pitches = [note.pitch for piece in corpus.pieces for note in piece.notes]
    from music21 import pitch

    low, high = pitch.Pitch(midi=min(pitches)), pitch.Pitch(midi=max(pitches))
    print(f"pieces: {len(corpus.pieces)}; {unit}: {sum(sizes.values())}")
    if args.representation == "tokens":
        print(f"vocabulary (train split, with <pad> and <unk>): {representation.features}")
    print(f"pitch range: {low.nameWithOctave} (MIDI {low.midi}) to {high.nameWithOctave} (MIDI {high.midi})")
    for split, pieces in splits.items():
        print(f"{split}: {len(pieces)} pieces, {sizes[split]} {unit.split(' at ')[0]}")
    print(f"ingest report: {corpus.report_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if args.command in NOT_YET:
            raise MusicTFError(NOT_YET[args.command])
        if args.command == "data":
            return _command_data(args)
        from musictf import engine

        return engine.run_command(args)
    except MusicTFError as error:
        print(f"musictf: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("musictf: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
