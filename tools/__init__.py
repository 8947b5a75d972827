"""The maintainers' tools, outside the installed package: `tools.perf` is the performance harness
behind `make bench` and `make gpu-check`."""
