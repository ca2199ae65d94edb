"""The fuzz targets, run briefly: no input raises anything but the library's own errors.

The scheduled run (fuzz/scheduled.sh) goes to a million inputs under libFuzzer; here
each target gets its seeds plus a few thousand mutations in process, and, where atheris
is installed, a couple of thousand coverage-guided inputs through the real runner.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from fuzz import targets
from fuzz.corpus import seeds
from fuzz.inputs import Reader, pack
from fuzz.quick import Finding, mutations, run_quick
from fuzz.run import run_target
from fuzz.targets import TARGETS, build_target
from wxcallback.core import MessageCrypto

QUICK_INPUTS = 2500
ATHERIS_INPUTS = 2000


@pytest.mark.parametrize("target", list(TARGETS))
def test_seeds_and_mutations_raise_only_library_errors(target: str) -> None:
    assert run_quick(target, QUICK_INPUTS, seed=len(target)) >= QUICK_INPUTS


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_target_has_seeds(target: str) -> None:
    assert len(seeds(target)) >= 5


def test_a_foreign_exception_escapes_a_target(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(body: object, envelope: object) -> str:
        raise KeyError("not a library error")

    monkeypatch.setattr(targets, "extract_encrypt", broken)
    with pytest.raises(KeyError):
        build_target("envelope-json")(pack(0x80, rest=b'{"encrypt": "x"}'))


def test_a_broken_round_trip_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # A decrypted frame that does not seal back to its ciphertext is a finding, not a pass.
    real = MessageCrypto.encrypt_reply

    def altered(self: MessageCrypto, *args: Any, **kwargs: Any) -> Any:
        return real(self, *args, **{**kwargs, "random": bytes(16)})

    monkeypatch.setattr(MessageCrypto, "encrypt_reply", altered)
    failures = 0
    for data in seeds("ciphertext"):
        try:
            build_target("ciphertext")(data)
        except AssertionError:
            failures += 1
    assert failures > 0


def test_the_quick_run_names_the_input_that_broke_a_target(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(plaintext: object, platform: object) -> None:
        raise IndexError("parser bug")

    monkeypatch.setattr(targets, "parse_message", broken)
    with pytest.raises(Finding, match="message-wecom-app: IndexError: parser bug for input") as caught:
        run_quick("message-wecom-app", 10)
    assert isinstance(caught.value.__cause__, IndexError)


def test_pack_writes_what_reader_reads() -> None:
    reader = Reader(pack(7, b"abc", 255, b"", rest=b"tail"))
    assert (reader.byte(), reader.chunk(), reader.byte(), reader.chunk(), reader.rest()) == (7, b"abc", 255, b"",
                                                                                            b"tail")
    assert (reader.byte(), reader.chunk(), reader.rest()) == (0, b"", b"")


def test_mutations_are_reproducible() -> None:
    corpus = seeds("decrypt")
    assert list(mutations(corpus, 50, seed=3)) == list(mutations(corpus, 50, seed=3))
    assert list(mutations(corpus, 50, seed=3)) != list(mutations(corpus, 50, seed=4))


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris not installed (wheels for Linux x86_64 only: pip install -e '.[fuzz]')")
@pytest.mark.parametrize("target", ["envelope-xml", "ciphertext", "message-wecom-robot", "http"])
def test_coverage_guided_run_finds_no_crash_hang_or_leak(target: str, tmp_path: Path) -> None:
    result = run_target(target, ATHERIS_INPUTS, tmp_path, timeout=10, rss_limit_mb=1024)
    assert result.failure == "", result.failure
    assert (result.crashes, result.hangs, result.ooms, result.exit_code) == (0, 0, 0, 0)
    assert result.executed >= ATHERIS_INPUTS
    assert result.memory_flat


@pytest.mark.parametrize("pick", range(5))  # wecom, robot, oa, oa-plain, gateway
@pytest.mark.parametrize("timestamp", [b"9" * 255, b"1" * 12, b"-1", b"1e9", b"\xef\xbc\x91700000000", b""])
def test_signed_requests_with_absurd_timestamps_never_answer_5xx(pick: int, timestamp: bytes) -> None:
    # mode 6: the signature is right over the fuzzed timestamp, so it reaches the window check
    # (a 309-digit timestamp once overflowed the float arithmetic there: 500)
    respond = build_target("http")
    for how in (0, 4, 8, 16, 20, 24):  # 16: the timestamp repeated 20 times (up to 5,100 digits)
        respond(pack(6, pick, how, b"nonce", timestamp, rest=b"<b>12</b>"))
