"""Run one target under atheris (libFuzzer): ``python -m fuzz.harness TARGET [libFuzzer flags] [dirs]``.

wxcallback is imported inside ``atheris.instrument_imports`` so the fuzzer sees its
branches (and the comparisons in them) as coverage. Any exception that escapes the
target is a crash: libFuzzer prints the traceback and writes the input as an artifact.
"""

from __future__ import annotations

import atexit
import signal
import sys

import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1].startswith("-"):
        raise SystemExit("usage: python -m fuzz.harness TARGET [libFuzzer flags] [corpus dirs]")
    name = argv[1]
    with atheris.instrument_imports(include=["wxcallback"]):
        import wxcallback.core  # noqa: F401  (instrumented before the targets bind to it)
        import wxcallback.messages  # noqa: F401
        if name == "http":
            import wxcallback.server.runtime  # noqa: F401
    from .targets import build_target

    target = build_target(name)
    # libFuzzer's hang detector is a SIGALRM interval timer; once the runs are done it
    # could fire while the interpreter tears down (with the default action: killed).
    atexit.register(signal.setitimer, signal.ITIMER_REAL, 0)
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
