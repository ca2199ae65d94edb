"""The Simulator: plays the platform against one callback URL and judges what comes back.

It sends what the platform sends (URL check, signed and encrypted callbacks, identical
resends, robot stream refreshes, and on request hostile requests) over one
``httpx.AsyncClient`` and turns each answer into an :class:`Exchange` of checks.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import httpx

from wxcallback.channel import ChannelKind, Mode

from .checks import check_deadline, check_status, judge_reply, judge_url_answer, stream_state
from .errors import SimulatorError
from .hostile import HostileCase, hostile_cases, judge_refusal
from .load import LoadReport, run_load
from .report import Check, Exchange, Report
from .scenarios import Callback, Scenarios
from .target import DataFormat, Target
from .wire import WireRequest, callback_request, url_verification

__all__ = ["Answer", "Simulator"]

# The platforms' deadlines: 1 s for the URL check (WeCom 90238), 5 s for a callback.
GET_DEADLINE = 1.0
POST_DEADLINE = 5.0
# A robot stream is polled for at most 6 minutes from the user's message (101031).
STREAM_TIMEOUT = 360.0
STREAM_INTERVAL = 1.0
# Far above any real callback (they are small XML/JSON; files travel by URL).
OVERSIZE_BYTES = 2 * 1024 * 1024


class Answer:
    """The raw outcome of one request: status (None when nothing came back), body, seconds taken."""

    __slots__ = ("status", "body", "latency", "error")

    def __init__(self, status: int | None, body: bytes, latency: float, error: str | None = None) -> None:
        self.status = status
        self.body = body
        self.latency = latency
        self.error = error


def _positive(value: float, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise SimulatorError(f"{what} must be a positive number of seconds, not {value!r}")
    return float(value)


class Simulator:
    """The WeChat / WeCom platform, pointed at ``url``.

    >>> async with Simulator("http://127.0.0.1:8000/wecom", platform="wecom-app", token="T",
    ...                      encoding_aes_key=KEY, receive_id="ww123") as sim:  # doctest: +SKIP
    ...     report = await sim.run_suite(retries=3, hostile=True)

    ``get_deadline`` / ``post_deadline`` are the platform's answer deadlines;
    ``stream_interval`` / ``stream_timeout`` pace the robot stream refreshes. A third party
    (``component``, ``wecom-suite``) is played for one ``tenant`` (the id of a templated URL);
    ``notice_url`` is its second URL, whose notices are sealed for ``notice_id`` (the
    component's AppID, by default ``receive_id``; a suite's SuiteID).
    """

    def __init__(
        self,
        url: str,
        *,
        platform: ChannelKind | str,
        token: str,
        encoding_aes_key: str | None = None,
        receive_id: str = "",
        mode: Mode | str = Mode.SAFE,
        data_format: DataFormat | str = DataFormat.XML,
        account_id: str = "gh_wxcallbacksim",
        agent_id: int = 1000002,
        get_deadline: float = GET_DEADLINE,
        post_deadline: float = POST_DEADLINE,
        stream_interval: float = STREAM_INTERVAL,
        stream_timeout: float = STREAM_TIMEOUT,
        oversize_bytes: int = OVERSIZE_BYTES,
        client: httpx.AsyncClient | None = None,
        tenant: str = "",
        notice_url: str | None = None,
        notice_id: str = "",
    ) -> None:
        self.target = Target.create(
            url, platform=platform, token=token, encoding_aes_key=encoding_aes_key, receive_id=receive_id,
            mode=mode, data_format=data_format, account_id=account_id, agent_id=agent_id, tenant=tenant,
        )
        self.notice_target: Target | None = None
        if notice_url is not None:
            if self.target.platform not in (ChannelKind.COMPONENT, ChannelKind.WECOM_SUITE):
                raise SimulatorError("only a component or a wecom-suite has a notice URL")
            self.notice_target = self.target.notice_target(notice_url, notice_id or receive_id)
        self.scenarios = Scenarios(self.target)
        self.get_deadline = _positive(get_deadline, "get_deadline")
        self.post_deadline = _positive(post_deadline, "post_deadline")
        self.stream_interval = _positive(stream_interval, "stream_interval")
        self.stream_timeout = _positive(stream_timeout, "stream_timeout")
        if not isinstance(oversize_bytes, int) or oversize_bytes < 1:
            raise SimulatorError(f"oversize_bytes must be a positive int, not {oversize_bytes!r}")
        self.oversize_bytes = oversize_bytes
        self._client = client
        self._owns_client = client is None

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: a proxy from the environment must not sit between us and a local endpoint.
            self._client = httpx.AsyncClient(timeout=None, trust_env=False, follow_redirects=False)
        return self._client

    async def send_request(
        self, request: WireRequest, deadline: float, *, client: httpx.AsyncClient | None = None,
        url: str | None = None,
    ) -> Answer:
        """Send one request (to the target, or ``url``); no answer within ``deadline`` s is status None."""
        client = client or self._http()
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                client.request(request.method, request.url(url or self.target.url), content=request.body or None,
                               headers=request.headers()),
                timeout=deadline,
            )
        except asyncio.TimeoutError:
            return Answer(None, b"", time.perf_counter() - started,
                          f"no answer within {deadline:g} s (the platform drops the connection)")
        except httpx.HTTPError as exc:
            return Answer(None, b"", time.perf_counter() - started, f"request failed: {type(exc).__name__}: {exc}")
        return Answer(response.status_code, response.content, time.perf_counter() - started)

    # -- URL verification -------------------------------------------------------------

    async def verify_url(self, echostr: str | None = None, *, target: Target | None = None) -> Exchange:
        """The GET sent when the URL is saved: the answer must be the echostr plaintext, within 1 s."""
        target = target or self.target
        request = url_verification(target, echostr=echostr)
        answer = await self.send_request(request, self.get_deadline, url=target.url)
        exchange = Exchange("verify URL (GET)" + (" of the notice URL" if target is not self.target else ""),
                            "GET", answer.status, answer.latency, answer.body, nonce=request.nonce)
        exchange.checks.append(check_status(answer.status, answer.error))
        if answer.status is not None:
            exchange.checks.append(check_deadline(answer.latency, self.get_deadline))
            encrypted = None
            if not target.is_official_account_like:
                encrypted = dict(parse_qsl(request.query, keep_blank_values=True)).get("echostr")
            exchange.checks.append(judge_url_answer(target, request.plaintext, answer.body, encrypted))
            exchange.reply = answer.body.decode("utf-8", "replace")
        return exchange

    # -- callbacks --------------------------------------------------------------------

    async def send_text(self, content: str = "hello", *, retries: int = 1) -> Exchange:
        """A user's text message (OA / WeCom XML, robot JSON)."""
        return await self.send(self.scenarios.text(content), retries=retries)

    async def send_event(self, event: str = "subscribe", *, retries: int = 1, **fields: Any) -> Exchange:
        """An event push: e.g. subscribe, CLICK, SCAN, enter_agent, enter_chat, template_card_event."""
        return await self.send(self.scenarios.event(event, **fields), retries=retries)

    async def send(self, callback: Callback, *, retries: int = 1, target: Target | None = None) -> Exchange:
        """Send ``callback`` ``retries`` times (same query, same body) and judge every answer.

        Resends must all get the same reply (the endpoint deduplicates); a robot stream
        reply is then polled with refresh callbacks until it finishes. ``target``: another
        URL of the channel (the notice URL).
        """
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 1:
            raise SimulatorError(f"retries must be an int ≥ 1, not {retries!r}")
        target = target or self.target
        request = callback_request(target, callback.payload, sender=callback.sender)
        first = await self._deliver(callback, request, target)
        for attempt in range(2, retries + 1):
            resend = await self._deliver(callback, request, target)
            resend.name = f"{callback.name} (resend {attempt}/{retries})"
            first.resends.append(resend)
        if first.resends:
            first.checks.append(_judge_resends(first))
        if self.target.platform is ChannelKind.WECOM_ROBOT and first.passed:
            state = stream_state(first.document)
            if state is not None and not state[1]:
                first.checks.append(await self._follow_stream(callback, first, state[0], state[2]))
        return first

    async def _deliver(self, callback: Callback, request: WireRequest, target: Target | None = None) -> Exchange:
        target = target or self.target
        answer = await self.send_request(request, self.post_deadline, url=target.url)
        exchange = Exchange(callback.name, "POST", answer.status, answer.latency, answer.body, nonce=request.nonce)
        exchange.checks.append(check_status(answer.status, answer.error))
        if answer.status != 200:
            return exchange
        exchange.checks.append(check_deadline(answer.latency, self.post_deadline))
        reading = judge_reply(target, callback, request.nonce, answer.body)
        exchange.checks.extend(reading.checks)
        exchange.reply = reading.plaintext
        exchange.document = reading.document
        return exchange

    async def _follow_stream(self, callback: Callback, first: Exchange, stream_id: str, content: str) -> Check:
        """Poll a robot stream until finish: the id must stay, the content may only grow."""
        chat = str(callback.payload.get("chattype", "single"))
        started = time.monotonic()
        while True:
            if time.monotonic() - started + self.stream_interval > self.stream_timeout:
                return Check("stream", False, f"not finished after {self.stream_timeout:g} s "
                                              f"({len(first.refreshes)} refreshes; the platform stops polling)")
            await asyncio.sleep(self.stream_interval)
            refresh = self.scenarios.stream_refresh(stream_id, chat=chat)
            exchange = await self._deliver(refresh, callback_request(self.target, refresh.payload,
                                                                     sender=refresh.sender))
            first.refreshes.append(exchange)
            count = len(first.refreshes)
            if not exchange.passed:
                return Check("stream", False, f"refresh {count}: {exchange.reason}")
            state = stream_state(exchange.document)
            if state is None:  # pragma: no cover - a passing refresh reply is a stream
                return Check("stream", False, f"refresh {count}: not a stream reply")
            new_id, finish, new_content = state
            if new_id != stream_id:
                return Check("stream", False, f"refresh {count}: stream.id changed from {stream_id!r} to {new_id!r}")
            if not new_content.startswith(content):
                return Check("stream", False, f"refresh {count}: content is not cumulative "
                                              f"({len(content)} chars before, {len(new_content)} now, "
                                              "not a continuation)")
            content = new_content
            if finish:
                return Check("stream", True, f"finished after {count} refreshes, {len(content)} chars")

    # -- hostile requests -------------------------------------------------------------

    async def hostile(self) -> list[Exchange]:
        """Requests the platform never sends; each must be refused with a 4xx."""
        exchanges = []
        for case in hostile_cases(self.target, self.scenarios, oversize_bytes=self.oversize_bytes):
            exchanges.append(await self._attack(case))
        return exchanges

    async def _attack(self, case: HostileCase) -> Exchange:
        if case.setup is not None:
            lead = await self.send_request(case.setup, self.post_deadline)
            if lead.status != 200:
                exchange = Exchange(case.name, case.setup.method, lead.status, lead.latency, lead.body)
                exchange.checks.append(Check("setup", False, "the legitimate request before the replay was not "
                                                             f"accepted ({lead.error or f'HTTP {lead.status}'})"))
                return exchange
        answer = await self.send_request(case.request, self.post_deadline)
        exchange = Exchange(case.name, case.request.method, answer.status, answer.latency, answer.body,
                            nonce=case.request.nonce)
        exchange.checks.append(judge_refusal(case, answer.status, answer.error))
        return exchange

    # -- suites -----------------------------------------------------------------------

    async def run_suite(self, *, retries: int = 1, hostile: bool = False) -> Report:
        """URL check, every common callback of the platform, then (optionally) hostile requests."""
        report = Report(self.target.describe())
        report.exchanges.append(await self.verify_url())
        for callback in self.scenarios.default():
            report.exchanges.append(await self.send(callback, retries=retries))
        if self.notice_target is not None:
            report.exchanges.append(await self.verify_url(target=self.notice_target))
            for callback in Scenarios(self.notice_target).notices(self.target.tenant or "wxba5fad812f8e6fb9"):
                report.exchanges.append(await self.send(callback, retries=retries, target=self.notice_target))
        if hostile:
            report.exchanges.extend(await self.hostile())
        return report

    async def load(
        self,
        n: int | None = 1000,
        concurrency: int = 8,
        *,
        duration: float | None = None,
        retry_fraction: float = 0.0,
        verify: bool = True,
    ) -> LoadReport:
        """Send ``n`` text callbacks (and/or for ``duration`` s) over ``concurrency`` connections."""
        return await run_load(self, n=n, concurrency=concurrency, duration=duration,
                              retry_fraction=retry_fraction, verify=verify)


def _judge_resends(first: Exchange) -> Check:
    for resend in first.resends:
        if not resend.passed:
            return Check("retries", False, f"{resend.name}: {resend.reason}")
        if resend.reply != first.reply:
            return Check("retries", False, f"{resend.name} got a different reply: "
                                           f"{_brief(first.reply)} then {_brief(resend.reply)} "
                                           "(resends must be deduplicated and answered alike)")
    return Check("retries", True, f"{len(first.resends) + 1} identical sends, same reply")


def _brief(reply: str | None) -> str:
    if reply is None:
        return "no reply"
    return repr(reply if len(reply) <= 60 else reply[:60] + "…")
