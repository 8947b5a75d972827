"""The library entry point, called as a user's script would (Flax's train_test.py style): the data is
prepared once for training, sampling and evaluation."""

import json

import pytest

from musictf.data import audio, corpus
from musictf.experiments import get_experiment
from musictf.run import train_and_evaluate


@pytest.mark.parametrize("number", ["1", "4"])
def test_train_and_evaluate_loads_the_corpus_once_and_encodes_each_piece_once(number, tmp_path, cache_dir, monkeypatch):
    experiment = get_experiment(number)
    config = experiment.load_config("smoke", ["transpose_range=0"])
    loads, encodes = [], []
    real_load = corpus.load_corpus
    monkeypatch.setattr(corpus, "load_corpus", lambda *args, **kwargs: loads.append(args) or real_load(*args, **kwargs))
    representation_class = type(experiment.make_representation(config))
    real_encode = representation_class.encode
    monkeypatch.setattr(representation_class, "encode", lambda self, piece: encodes.append(piece.piece_id) or real_encode(self, piece))

    result = train_and_evaluate(experiment, config, tmp_path / "run", preset="smoke", verbose=0)
    assert len(loads) == 1
    pieces = json.loads((tmp_path / "run" / "manifest.json").read_text())["pieces"]
    assert len(encodes) == sum(pieces.values()) and len(set(encodes)) == len(encodes)
    assert len(result["history"]["loss"]) == config.epochs
    assert result["test"] and result["baseline"] and len(result["sample_files"]) == config.num_samples
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"] == result["test"]


def test_experiment_5_renders_each_piece_once(tmp_path, cache_dir, monkeypatch):
    experiment = get_experiment("5")
    config = experiment.load_config("smoke")
    renders = []
    real_render = audio.render_notes
    monkeypatch.setattr(audio, "render_notes", lambda *args, **kwargs: renders.append(1) or real_render(*args, **kwargs))
    train_and_evaluate(experiment, config, tmp_path / "run", preset="smoke", verbose=0)
    pieces = json.loads((tmp_path / "run" / "manifest.json").read_text())["pieces"]
    assert len(renders) == sum(pieces.values())
