"""A response leaves in one write: the head waits for the body, never longer than one loop turn."""

from __future__ import annotations

import asyncio

from wxcallback.server.connections import _HeadWithBody


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_head_and_body_sent_in_one_turn_leave_in_one_write() -> None:
    async def main() -> None:
        transport = _Transport()
        cycle = _HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        cycle.write(b"HTTP/1.1 200 OK\r\n\r\n")
        cycle.write(b"body")
        cycle.write(b" more")  # later writes pass straight through
        await asyncio.sleep(0)
        assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b" more"]
        assert cycle.get_extra_info("peername") == "info:peername"

    asyncio.run(main())


def test_a_head_without_a_body_goes_out_on_the_next_turn_of_the_loop() -> None:
    async def main() -> None:
        transport = _Transport()
        cycle = _HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        cycle.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # HEAD, 204: no body follows
        assert transport.writes == []
        await asyncio.sleep(0)
        assert transport.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]

    asyncio.run(main())


def test_close_sends_the_head_held_first() -> None:
    async def main() -> None:
        transport = _Transport()
        cycle = _HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        cycle.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n")
        cycle.close()
        assert transport.writes == [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"] and transport.closed
        await asyncio.sleep(0)
        assert len(transport.writes) == 1

    asyncio.run(main())
