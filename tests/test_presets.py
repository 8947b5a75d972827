"""Every preset of every experiment, resolved (dataclass defaults, the preset's `extends` chain, its
own values), pinned against a golden file: moving a preset's values between files, or writing one
preset as another's differences, must not change what any preset runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from musictf import config as config_module
from musictf.errors import ConfigError
from musictf.experiments import get_experiment
from musictf.experiments.base import MODULES

GOLDEN = Path(__file__).parent / "golden" / "resolved_presets.json"


def resolved_presets() -> dict:
    resolved = {}
    for module in MODULES:
        experiment = get_experiment(module)
        presets = config_module.read_experiment_file(experiment.experiment_file).get("presets", {})
        for preset in sorted(presets):
            resolved[f"{module}:{preset}"] = config_module.to_dict(experiment.load_config(preset))
    return resolved


def test_every_resolved_preset_matches_the_golden_file():
    """To accept an intended change: MUSICTF_WRITE_GOLDEN=1 pytest tests/test_presets.py, then read
    the diff of tests/golden/resolved_presets.json."""
    resolved = json.loads(json.dumps(resolved_presets()))
    if os.environ.get("MUSICTF_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(resolved, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(resolved) == sorted(golden)
    for name in golden:
        assert resolved[name] == golden[name], name


def test_a_preset_extends_one_in_another_experiments_file(tmp_path):
    (tmp_path / "e8_other.toml").write_text("[presets.base]\nunits = 7\nepochs = 3\n")
    (tmp_path / "e9_this.toml").write_text('[presets.mine]\nextends = "e8_other:base"\nepochs = 5\n')
    presets = config_module.read_experiment_file(tmp_path / "e9_this.toml")["presets"]
    assert config_module.preset_values(presets, "mine", tmp_path / "e9_this.toml") == {
        "units": 7,
        "epochs": 5,
    }


def test_presets_that_extend_each_other_across_files_in_a_loop_are_refused(tmp_path):
    (tmp_path / "e8_other.toml").write_text('[presets.base]\nextends = "e9_this:mine"\n')
    (tmp_path / "e9_this.toml").write_text('[presets.mine]\nextends = "e8_other:base"\n')
    presets = config_module.read_experiment_file(tmp_path / "e9_this.toml")["presets"]
    with pytest.raises(ConfigError, match="loop"):
        config_module.preset_values(presets, "mine", tmp_path / "e9_this.toml")
    with pytest.raises(ConfigError, match="e7_missing.toml"):
        (tmp_path / "e9_this.toml").write_text('[presets.mine]\nextends = "e7_missing:base"\n')
        presets = config_module.read_experiment_file(tmp_path / "e9_this.toml")["presets"]
        config_module.preset_values(presets, "mine", tmp_path / "e9_this.toml")
