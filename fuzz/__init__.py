"""Coverage-guided fuzzing of every entry point that takes outside input.

``fuzz/targets.py`` holds one target per entry point (plain functions of one bytes
input, usable without atheris), ``fuzz/corpus.py`` the seed inputs built from the
test vectors (tests/vectors/) and from replies we encrypt ourselves, ``fuzz/harness.py`` runs one
target under atheris/libFuzzer and ``fuzz/run.py`` runs them all and writes a summary.
A target fails only on an exception that is not a WXCallbackError (or a broken
invariant, raised as AssertionError); the library's own errors are the expected
answer to bad input.
"""
