"""Starlette + wechatpy 1.8.18 (WeCom app callback), run under uvicorn.

The same job as ``flask_wechatpy``: check msg_signature, decrypt, parse, answer
"echo: <content>" encrypted; dedup is a dict by MsgId in each worker process.
Settings come from the environment: BENCH_TOKEN, BENCH_AES_KEY, BENCH_CORP_ID.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.enterprise import parse_message  # type: ignore[import-untyped]
from wechatpy.enterprise.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.enterprise.replies import TextReply  # type: ignore[import-untyped]
from wechatpy.exceptions import InvalidSignatureException  # type: ignore[import-untyped]

crypto = WeChatCrypto(os.environ["BENCH_TOKEN"], os.environ["BENCH_AES_KEY"], os.environ["BENCH_CORP_ID"])
answered: dict[str, str] = {}  # MsgId -> reply plaintext, this process only


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def callback(request: Request) -> Response:
    args = request.query_params
    nonce = args.get("nonce", "")
    body = await request.body()
    try:
        plaintext = crypto.decrypt_message(body, args.get("msg_signature", ""), args.get("timestamp", ""), nonce)
    except InvalidSignatureException:
        return PlainTextResponse("forbidden", 403)
    message = parse_message(plaintext)
    reply = answered.get(str(message.id))
    if reply is None:
        reply = TextReply(message=message, content=f"echo: {message.content}").render()
        answered[str(message.id)] = reply
    return Response(crypto.encrypt_message(reply, nonce), media_type="application/xml")


app = Starlette(routes=[Route("/healthz", healthz), Route("/wecom", callback, methods=["POST"])])
