"""Robustness evaluation: FreeLB's Table 5 loss increase, an offline word-substitution attack, AdvGLUE files."""
