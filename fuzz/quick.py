"""A short, deterministic fuzz pass without libFuzzer, for CI and for machines without atheris.

Each target gets its seeds and then ``count`` inputs made from them by a seeded
mutator (bit flips, boundary bytes, inserted and deleted runs, splices of two seeds,
truncation). It has no coverage feedback, so it only checks that the seeds' neighbourhood
raises nothing but WXCallbackError; the scheduled run under atheris goes deep.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from .corpus import seeds
from .targets import build_target

__all__ = ["Finding", "mutations", "run_quick"]

_BOUNDARY = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x20", b"<", b"]]>", b"&",
             b"{", b"\"", b"=", b"%", b"+", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"<!DOCTYPE x>", b"\\u0000")


def _mutate(data: bytes, other: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        at = rng.randint(0, len(buffer))
        if choice == 0 and buffer:
            index = rng.randrange(len(buffer))
            buffer[index] ^= 1 << rng.randrange(8)
        elif choice == 1 and buffer:
            buffer[rng.randrange(len(buffer))] = rng.choice((0, 1, 0x1F, 0x20, 0x7F, 0x80, 0xFF))
        elif choice == 2:
            buffer[at:at] = rng.choice(_BOUNDARY) * rng.choice((1, 1, 2, 64))
        elif choice == 3 and buffer:
            del buffer[at : at + rng.randint(1, 16)]
        elif choice == 4:
            cut = rng.randint(0, len(other))
            buffer = buffer[:at] + other[cut:]
        elif choice == 5:
            del buffer[rng.randint(0, len(buffer)) :]
        else:
            buffer[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(buffer)


def mutations(corpus: Sequence[bytes], count: int, seed: int = 0) -> Iterator[bytes]:
    """``count`` inputs mutated from ``corpus``, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    pool = list(corpus) or [b""]
    for _ in range(count):
        yield _mutate(rng.choice(pool), rng.choice(pool), rng)


class Finding(Exception):
    """A target raised something other than WXCallbackError; the cause is chained, the input named."""


def run_quick(target: str, count: int, seed: int = 0) -> int:
    """Run ``target`` over its seeds and ``count`` mutations; the number of inputs run.

    An exception other than WXCallbackError (or a broken invariant) ends the run as a
    Finding naming the target and the input, chained to the original exception.
    """
    function = build_target(target)
    corpus = seeds(target)
    ran = 0
    for data in [*corpus, *mutations(corpus, count, seed)]:
        try:
            function(data)
        except Exception as exc:
            raise Finding(f"{target}: {type(exc).__name__}: {exc} for input {data!r}") from exc
        ran += 1
    return ran
