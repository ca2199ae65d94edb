"""Flask + wechatpy 1.8.18 (WeCom app callback), run under gunicorn sync workers.

The same job as ``wxcallback serve`` with the demo echo: check msg_signature, decrypt,
parse, answer "echo: <content>" as an encrypted text reply. Dedup is a dict by MsgId in
each worker process (no replay guard, no timestamp window, no shared store).
Settings come from the environment: BENCH_TOKEN, BENCH_AES_KEY, BENCH_CORP_ID.
"""

from __future__ import annotations

import os

from flask import Flask, Response, request
from wechatpy.enterprise import parse_message  # type: ignore[import-untyped]
from wechatpy.enterprise.crypto import WeChatCrypto  # type: ignore[import-untyped]
from wechatpy.enterprise.replies import TextReply  # type: ignore[import-untyped]
from wechatpy.exceptions import InvalidSignatureException  # type: ignore[import-untyped]

crypto = WeChatCrypto(os.environ["BENCH_TOKEN"], os.environ["BENCH_AES_KEY"], os.environ["BENCH_CORP_ID"])
answered: dict[str, str] = {}  # MsgId -> reply plaintext, this process only
app = Flask(__name__)


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@app.post("/wecom")
def callback() -> Response:
    args = request.args
    nonce = args.get("nonce", "")
    try:
        plaintext = crypto.decrypt_message(request.get_data(), args.get("msg_signature", ""),
                                           args.get("timestamp", ""), nonce)
    except InvalidSignatureException:
        return Response("forbidden", 403)
    message = parse_message(plaintext)
    reply = answered.get(str(message.id))
    if reply is None:
        reply = TextReply(message=message, content=f"echo: {message.content}").render()
        answered[str(message.id)] = reply
    return Response(crypto.encrypt_message(reply, nonce), content_type="application/xml")
