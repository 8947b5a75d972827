"""Figure 1: cold parsing (1 process and N processes) against a cache hit."""

from __future__ import annotations

import os
import tempfile

from musictf.data.corpus import load_corpus
from tools.perf.timing import interleaved, paired_ratio, seconds, summary


def corpus_figures(source: str, files: int, repeats: int) -> dict:
    """Each round parses the first `files` files of `source` into an empty cache with 1 process,
    then with one process per core, and then loads the second cache again (a cache hit)."""
    processes = os.cpu_count() or 1
    hits: list[float] = []
    pieces: list[int] = []

    def cold(workers: int, then_hit: bool):
        def measure() -> float:
            with tempfile.TemporaryDirectory(prefix="musictf-bench-cache-") as cache:
                took = seconds(
                    lambda: load_corpus(
                        source, cache_dir=cache, max_files=files, workers=workers, progress=False
                    )
                )
                if then_hit:
                    corpus = []
                    hits.append(
                        seconds(
                            lambda: corpus.append(
                                load_corpus(source, cache_dir=cache, max_files=files, progress=False)
                            )
                        )
                    )
                    pieces.append(len(corpus[0].pieces))
            return took

        return measure

    times = interleaved(
        {"one_process": cold(1, False), "parallel": cold(processes, True)}, repeats=repeats, warmup=0
    )
    return {
        "source": source,
        "files": files,
        "pieces": pieces[-1],
        "processes": processes,
        "cold_files_per_second_1_process": summary([files / t for t in times["one_process"]]),
        "cold_files_per_second_n_processes": summary([files / t for t in times["parallel"]]),
        "parallel_speedup": paired_ratio(times["one_process"], times["parallel"]),
        "cache_hit_seconds": summary(hits),
        "cache_hit_speedup": paired_ratio(times["parallel"], hits),
        "goal": {"cache_hit_speedup": 100.0},
    }
