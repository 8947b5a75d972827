"""Data stages: corpus -> representation (tokens, piano roll, audio) -> tf.data pipeline."""
