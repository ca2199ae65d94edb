"""What the simulator found: checks, exchanges and the report that prints them.

A :class:`Check` is one judgement with the reason a person can act on. An
:class:`Exchange` is one request and its answer with all the checks made on it
(resends of the same callback and stream refreshes hang under the first one). A
:class:`Report` is a run: a table for people, ``to_dict()`` for machines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Check", "Exchange", "Report"]


@dataclass(frozen=True)
class Check:
    """One judgement: its name, whether it held, and why."""

    name: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class Exchange:
    """A request the platform sent and what came back.

    ``status`` is None when no answer arrived (timeout, refused connection);
    ``reply`` is the reply's plaintext (decrypted when it was encrypted), or None for
    "no reply" (an empty body or ``success``) and for answers that could not be read.
    """

    name: str
    method: str
    status: int | None
    latency: float
    body: bytes = b""
    reply: str | None = None
    checks: list[Check] = field(default_factory=list)
    # Identical resends of this request (--retries) and the stream refreshes that followed it.
    resends: list[Exchange] = field(default_factory=list)
    refreshes: list[Exchange] = field(default_factory=list)
    # The request's nonce and the parsed reply document, for callers that look deeper.
    nonce: str = ""
    document: Any = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    @property
    def reason(self) -> str:
        """Why it failed, or a short account of what passed."""
        failures = self.failures
        if failures:
            return "; ".join(f"{check.name}: {check.detail}" if check.detail else check.name for check in failures)
        summary = [check.detail for check in self.checks if check.name in ("reply", "stream", "retries", "refused")
                   and check.detail]
        return "; ".join(summary)

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "method": self.method,
            "status": self.status,
            "latency_ms": round(self.latency * 1000, 2),
            "passed": self.passed,
            "reply": self.reply,
            "checks": [check.to_dict() for check in self.checks],
        }
        if self.resends:
            document["resends"] = [resend.to_dict() for resend in self.resends]
        if self.refreshes:
            document["refreshes"] = [refresh.to_dict() for refresh in self.refreshes]
        return document


@dataclass
class Report:
    """A simulator run against one target."""

    target: dict[str, Any]
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.exchanges) and all(exchange.passed for exchange in self.exchanges)

    def table(self) -> str:
        """One line per exchange: name, HTTP status, latency, PASS/FAIL and why."""
        rows = [(exchange.name, "-" if exchange.status is None else str(exchange.status),
                 f"{exchange.latency * 1000:.1f} ms", "PASS" if exchange.passed else "FAIL", exchange.reason)
                for exchange in self.exchanges]
        header = ("check", "status", "latency", "result", "why")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
        lines = []
        for row in [header, *rows]:
            cells = [row[i].ljust(widths[i]) for i in range(4)]
            lines.append("  ".join([*cells, row[4]]).rstrip())
        failed = sum(not exchange.passed for exchange in self.exchanges)
        lines.append("")
        lines.append(f"{len(self.exchanges) - failed} passed, {failed} failed" + ("" if failed else ": all passed"))
        hint = self.hint()
        if hint:
            lines.append(hint)
        return "\n".join(lines)

    def hint(self) -> str | None:
        """What to check first when every check failed with one status: the usual setup mistakes."""
        statuses = {exchange.status for exchange in self.exchanges}
        if not self.exchanges or any(exchange.passed for exchange in self.exchanges) or len(statuses) != 1:
            return None
        status = statuses.pop()
        where = self.target.get("url", "the URL")
        hints = {
            None: f"nothing answered at {where}: is the server running, on this host and port?",
            404: "every request got 404: no channel has this path (compare the URL with the channel's path)",
            403: "every request got 403: check --token and --receive-id; the server's log line says which",
            400: "every request got 400: check --key (the EncodingAESKey); the server's log line says why",
        }
        return hints.get(status)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "passed": self.passed,
                "exchanges": [exchange.to_dict() for exchange in self.exchanges]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)
