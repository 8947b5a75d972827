"""The numbered experiments; `get_experiment("4")` returns experiment 4's description."""

from musictf.experiments.base import Experiment, get_experiment

__all__ = ["Experiment", "get_experiment"]
