"""musictf: reproducible deep-learning music-generation experiments on Keras 3."""

__version__ = "0.1.0"
