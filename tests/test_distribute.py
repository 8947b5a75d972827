"""tf.distribute paths on the CPU: mirrored over 2 logical devices matches one device; TPU errors."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from musictf.distribute import get_strategy
from musictf.errors import MusicTFError

MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    from musictf.distribute import configure_logical_cpus
    configure_logical_cpus(2)
    import keras, numpy as np, tensorflow as tf
    from musictf.distribute import get_strategy
    from musictf.experiments import get_experiment
    from musictf.experiments.base import prepare_data
    from musictf.data.pipeline import global_batch_size, make_dataset
    from musictf.train import build_and_compile

    experiment = get_experiment(sys.argv[1])
    config = experiment.load_config("smoke", ["lstm_dropout=0", "dense_dropout=0", "batch_size=8", "transpose_range=0", "clipnorm=0"])
    data = prepare_data(experiment, config, progress=False)
    losses, weights = {}, None
    for name in ("default", "mirrored"):
        strategy = get_strategy(name)
        per_replica = config.batch_size * 2 // strategy.num_replicas_in_sync  # the same global batch: 16
        trial = type(config)(**{**config.__dict__, "batch_size": per_replica})
        # Unshuffled: tf.data's shuffle order changes when a strategy rewrites the pipeline.
        train = make_dataset(data.arrays["train"], seq_len=trial.seq_len, target=experiment.target, shuffle=False,
                             batch_size=global_batch_size(trial.batch_size, strategy), seed=0, drop_remainder=True)
        model = build_and_compile(experiment, trial, data.representation.features, strategy)
        if weights is None:
            weights = model.get_weights()
        else:
            model.set_weights(weights)
        history = model.fit(train.take(4), epochs=3, verbose=0, shuffle=False)
        losses[name] = (strategy.num_replicas_in_sync, history.history["loss"])
    print(json.dumps(losses))
""")


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["2", "4"])
def test_mirrored_over_two_logical_cpus_matches_one_device(experiment, cache_dir):
    finished = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, experiment], capture_output=True, text=True,
                              timeout=300, env=os.environ | {"MUSICTF_CACHE_DIR": str(cache_dir)})
    assert finished.returncode == 0, finished.stderr[-2000:]
    losses = json.loads(finished.stdout.strip().splitlines()[-1])
    assert losses["default"][0] == 1 and losses["mirrored"][0] == 2
    for single, mirrored in zip(losses["default"][1], losses["mirrored"][1], strict=True):
        assert mirrored == pytest.approx(single, abs=1e-5)
    assert losses["default"][1][-1] < losses["default"][1][0]


def test_tpu_without_a_tpu_is_one_clear_error_and_auto_falls_back():
    with pytest.raises(MusicTFError, match="no TPU found"):
        get_strategy("tpu")
    assert get_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(MusicTFError, match="unknown strategy"):
        get_strategy("gpu-please")
