"""Parse + dispatch + render cost per callback: wxcallback.messages vs wechatpy.

A script, not a test: prints µs per callback for the Official Account types both
libraries handle (text, image, subscribe event, CLICK event), measured interleaved in
one run (rounds alternate between the libraries so machine noise hits both), and the
ratio wechatpy / wxcallback. wechatpy (1.8.18) is optional:
``.venv/bin/pip install wechatpy==1.8.18``.

    .venv/bin/python bench/bench_messages.py [--rounds 7] [--number 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from wxcallback.messages import Platform, Reply, Router, parse_message, render_reply

CREATE_TIME = 1700000000

CALLBACKS = {
    "text": (
        "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
        "<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>"
        "<CreateTime>1714112445</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[你好，请问营业时间？]]></Content><MsgId>24602987645125431</MsgId></xml>"
    ),
    "image": (
        "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
        "<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>"
        "<CreateTime>1714112445</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        "<PicUrl><![CDATA[http://mmbiz.qpic.cn/example.jpg]]></PicUrl>"
        "<MediaId><![CDATA[media_id_0123456789]]></MediaId><MsgId>24602987645125432</MsgId></xml>"
    ),
    "event subscribe": (
        "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
        "<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>"
        "<CreateTime>1714112445</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey>"
        "<Ticket><![CDATA[TICKET]]></Ticket></xml>"
    ),
    "event click": (
        "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
        "<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>"
        "<CreateTime>1714112445</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[MENU_HOURS]]></EventKey></xml>"
    ),
}

ANSWERS = {
    "text": "营业时间 9:00-18:00",
    "image": "图片已收到",
    "subscribe": "欢迎关注！",
    "click": "点击了菜单",
}


def ours() -> Callable[[str], str]:
    router = Router()

    @router.text
    def on_text(message: object) -> str:
        return ANSWERS["text"]

    @router.image
    def on_image(message: object) -> str:
        return ANSWERS["image"]

    @router.subscribe
    def on_subscribe(message: object) -> str:
        return ANSWERS["subscribe"]

    @router.click()
    def on_click(message: object) -> str:
        return ANSWERS["click"]

    def handle(body: str) -> str:
        message = parse_message(body, Platform.OFFICIAL_ACCOUNT)
        reply = router.dispatch_sync(message)
        assert isinstance(reply, Reply)
        return render_reply(reply, message, create_time=CREATE_TIME)

    return handle


def theirs() -> Callable[[str], str] | None:
    try:
        from wechatpy import create_reply  # type: ignore[import-untyped]
        from wechatpy import parse_message as wechatpy_parse
    except ImportError:
        return None

    # wechatpy has no router: the usual hand-written dispatch on type/event
    def handle(body: str) -> str:
        message = wechatpy_parse(body)
        if message.type == "event":
            # wechatpy names a QR-code follow "subscribe_scan"
            answer = ANSWERS["subscribe" if message.event == "subscribe_scan" else message.event]
        else:
            answer = ANSWERS[message.type]
        reply = create_reply(answer, message)
        reply.time = CREATE_TIME
        return str(reply.render())

    return handle


def per_op_us(handle: Callable[[str], str], body: str, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        handle(body)
    return (time.perf_counter() - start) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()

    mine = ours()
    other = theirs()
    if other is None:
        print("wechatpy not installed: measuring wxcallback only "
              "(.venv/bin/pip install wechatpy==1.8.18 to compare)")

    rows = []
    for name, body in CALLBACKS.items():
        # both must answer the same text, or the comparison means nothing
        if other is not None:
            assert parse_message(mine(body), Platform.OFFICIAL_ACCOUNT).raw["Content"] == \
                parse_message(other(body), Platform.OFFICIAL_ACCOUNT).raw["Content"]
        ours_times: list[float] = []
        theirs_times: list[float] = []
        for _ in range(args.rounds):
            ours_times.append(per_op_us(mine, body, args.number))
            if other is not None:
                theirs_times.append(per_op_us(other, body, args.number))
        rows.append((name, statistics.median(ours_times),
                     statistics.median(theirs_times) if theirs_times else None))

    print(f"\nparse + dispatch + render, µs per callback (median of {args.rounds} interleaved "
          f"rounds × {args.number})")
    print(f"{'callback':<18}{'wxcallback':>12}{'wechatpy':>12}{'ratio':>10}")
    for name, mine_us, theirs_us in rows:
        if theirs_us is None:
            print(f"{name:<18}{mine_us:>12.2f}{'-':>12}{'-':>10}")
        else:
            print(f"{name:<18}{mine_us:>12.2f}{theirs_us:>12.2f}{theirs_us / mine_us:>9.2f}×")


if __name__ == "__main__":
    main()
