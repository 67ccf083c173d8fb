"""Other gateways the benchmarks run side by side with ours, each in a venv of its own."""
