import pytest

from musictf.config import load_config, parse_overrides
from musictf.errors import ConfigError
from musictf.experiments import get_experiment
from musictf.experiments.base import MODULES


@pytest.mark.parametrize("module", MODULES)
def test_every_preset_loads_and_paper_is_the_documented_size(module):
    experiment = get_experiment(module)
    import tomllib

    presets = tomllib.loads(experiment.experiment_file.read_text())["presets"]
    assert {"smoke", "cpu", "paper"} <= set(presets)
    for preset in presets:
        experiment.load_config(preset)
    paper = experiment.load_config("paper")
    if experiment.kind == "audio":
        assert (paper.sample_rate, paper.layers_per_stack, paper.receptive_field) == (16000, 10, 3070)
    elif experiment.number == 6:  # Johnson 2017's biaxial sizes
        assert (paper.units, paper.num_layers, paper.pitch_units, paper.pitch_layers) == (300, 2, 100, 2)
        assert [paper.pitch_units_of(layer) for layer in range(2)] == [100, 50] and paper.lstm_dropout == 0.5
    else:
        assert paper.units == 512


def test_paper_presets_match_the_documented_architectures():
    e1 = get_experiment("1").load_config("paper")
    assert (e1.num_layers, e1.dense_units, e1.dropout_rate, e1.optimizer, e1.seq_len) == (
        3,
        256,
        0.3,
        "rmsprop",
        100,
    )
    e2 = get_experiment("2").load_config("paper")
    assert (e2.num_layers, e2.lstm_dropout, e2.dense_units, e2.dense_dropout, e2.output) == (
        2,
        0.2,
        256,
        0.5,
        "softmax",
    )
    e4 = get_experiment("4").load_config("paper")
    assert (e4.focal_alpha, e4.focal_gamma, e4.teacher_forcing_ratio) == (0.5, 2.0, 0.5)
    assert (e4.teacher_forcing_schedule, e4.tune_threshold) == ("quadratic", False)  # the documented training
    e1_paper = get_experiment("1").load_config("paper")
    assert e1_paper.token_mode == "pitch"
    for key in ("2", "3", "4"):
        jsb = get_experiment(key).load_config("jsb")
        assert (
            jsb.steps_per_quarter,
            jsb.roll_encoding,
            jsb.sampled_frames,
            jsb.transpose_to_c,
            jsb.pad_start,
            jsb.max_eval_windows,
        ) == (1, "active", True, True, True, 0)


def test_scheduled_sampling_cannot_train_a_within_frame_model():
    with pytest.raises(ConfigError, match="scheduled sampling draws keys independently"):
        get_experiment("4").load_config(
            "cpu", ["frame_autoregression=true", "teacher_forcing_schedule=quadratic"]
        )
    get_experiment("4").load_config("cpu", ["frame_autoregression=true"])  # plain teacher forcing is fine


def test_overrides_are_typed_and_checked(tmp_path):
    experiment = get_experiment("4")
    config = experiment.load_config("smoke", ["units=8", "attention=true", "focal_alpha=0.6"])
    assert (config.units, config.attention, config.focal_alpha) == (8, True, 0.6)
    with pytest.raises(ConfigError, match="must be bool"):
        experiment.load_config("smoke", ["attention=maybe"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["units"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[presets.x]\nunits = 'big'\n")
    with pytest.raises(ConfigError, match="units must be int"):
        load_config(experiment.config_class, bad, "x")


@pytest.mark.parametrize("number", ["1", "2", "3", "4", "5", "6"])
def test_every_numeric_field_refuses_negative_and_non_finite_values(number):
    import dataclasses

    from musictf.config import replace

    config = get_experiment(number).load_config("cpu")
    numeric = [
        field.name
        for field in dataclasses.fields(config)
        if type(getattr(config, field.name)) in (int, float)
    ]
    assert len(numeric) > 20
    for name in numeric:
        bad_values = ["-1", "nan", "inf"] if isinstance(getattr(config, name), float) else ["-1"]
        for bad in bad_values:
            with pytest.raises(ConfigError, match=name):
                replace(config, {name: bad}, origin="--set")


def test_seeds_beyond_what_keras_and_numpy_accept_are_refused_in_one_line(capsys):
    """Reliability review D18: 2**32 and above passed the check, then crashed in training or sampling."""
    experiment = get_experiment("2")
    assert experiment.load_config("smoke", [f"seed={2**32 - 1}"]).seed == 2**32 - 1
    for field in ("seed", "split_seed"):
        with pytest.raises(ConfigError, match=rf"{field} must be in \[0, 2\*\*32 - 1\], got 4294967296"):
            experiment.load_config("smoke", [f"{field}={2**32}"])
    from musictf.cli import main

    assert main(["train", "2", "--preset", "smoke", "--set", "seed=99999999999999999999"]) == 2
    err = capsys.readouterr().err.strip()
    assert "seed must be in [0, 2**32 - 1]" in err and len(err.splitlines()) == 1


def test_a_preset_extends_another_and_a_loop_or_a_missing_parent_is_one_error(tmp_path):
    """`extends` takes the named preset's values, then the preset's own, recursively."""
    from musictf.experiments.rolls import RollConfig

    path = tmp_path / "e.toml"
    path.write_text(
        '[presets.base]\nunits = 64\nseq_len = 8\n[presets.child]\nextends = "base"\nseq_len = 16\n'
        '[presets.grandchild]\nextends = "child"\nepochs = 3\n'
        '[presets.a]\nextends = "b"\n[presets.b]\nextends = "a"\n[presets.orphan]\nextends = "nowhere"\n'
    )
    config = load_config(RollConfig, path, "grandchild")
    assert (config.units, config.seq_len, config.epochs) == (64, 16, 3)
    with pytest.raises(ConfigError, match="loop: a -> b -> a"):
        load_config(RollConfig, path, "a")
    with pytest.raises(ConfigError, match="no preset 'nowhere'"):
        load_config(RollConfig, path, "orphan")


BENCHMARK_PRESETS = ("jsb", "nottingham", "musedata", "piano-midi")


@pytest.mark.parametrize("number", ["2", "3"])
def test_each_benchmark_has_a_within_frame_and_an_independent_preset_on_its_protocol(number):
    """Both families for each published data set: 88-key active rolls, every frame scored from the
    first; `-independent` predicts the 88 keys independently (as the published LSTM/GRU/TCN)."""
    experiment = get_experiment(number)
    for name in BENCHMARK_PRESETS:
        within, independent = experiment.load_config(name), experiment.load_config(f"{name}-independent")
        for config in (within, independent):
            assert (config.roll_encoding, config.pad_start, config.max_eval_windows) == ("active", True, 0)
            assert config.source == (
                "music21:bach" if name == "jsb" else f"benchmark:{name}"
            )  # only JSB has a music21 stand-in
        assert within.frame_autoregression and not independent.frame_autoregression


def test_a_benchmark_preset_without_its_file_says_which_file_to_pass(capsys, tmp_path):
    from musictf.cli import main

    assert main(["train", "3", "--preset", "nottingham", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "benchmark:nottingham" in err and "--source PATH/nottingham.json" in err


def test_a_weight_decay_that_would_overshoot_each_step_is_refused():
    """Reliability review, note on row 73: weight_decay=1e6 diverged to 1.9e35 without a word."""
    from musictf.experiments import get_experiment

    experiment = get_experiment("2")
    with pytest.raises(ConfigError, match="weight_decay x learning_rate must be below 1"):
        experiment.load_config("smoke", ["weight_decay=1e6"])
    assert experiment.load_config("smoke", ["weight_decay=0.1"]).weight_decay == 0.1


def test_a_saved_config_without_a_later_weight_field_reads_as_it_was_trained():
    """Runs saved before the voice terms existed were trained without them: their config.json lacks
    the fields, and reading it back must not build today's default (or their checkpoints would not
    load). A saved value, and a new config's default, are kept."""
    from musictf.config import from_dict
    from musictf.experiments.rolls import RollConfig

    older = from_dict(RollConfig, {"units": 64}, origin="config.json")
    assert (older.voice_bins, older.voice_change_bins, older.units) == (0, 0, 64)
    assert from_dict(RollConfig, {"voice_bins": 9}, origin="config.json").voice_bins == 9
    assert RollConfig().voice_bins > 0 and RollConfig().voice_change_bins > 0


@pytest.mark.parametrize("module", MODULES)
def test_every_field_with_a_fixed_set_of_values_refuses_another_and_names_them(module):
    experiment = get_experiment(module)
    config = experiment.load_config("smoke")
    assert {"optimizer", "precision"} <= set(config.CHOICES)
    for name, choices in config.CHOICES.items():
        assert getattr(config, name) in choices
        with pytest.raises(ConfigError, match=f"{name} must be .*{choices[-1]}, got 'bogus'"):
            load_config(experiment.config_class, experiment.experiment_file, "smoke", [f"{name}=bogus"])
