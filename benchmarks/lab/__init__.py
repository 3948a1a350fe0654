"""The benchmark lab: what the project measures about itself beyond `advlm bench` (peers, the hand-written floor,
Trainers taking turns, op counts, targets). Not installed; run from the repository as `benchmarks/*.py`."""
