"""Run the protocol on the official WeCom sample (doc 90968 "举例说明"), end to end.

URL verification, decryption of the published callback, an encrypted reply, and the
reply opened again, with the values the official SDKs publish.
"""

from wxcallback import MessageCrypto

TOKEN = "QDG6eK"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"

crypto = MessageCrypto(TOKEN, ENCODING_AES_KEY, CORP_ID)

echo = crypto.verify_url(
    "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780",
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
)
print(f"GET  verify_url  -> {echo}")

body = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJ"
    "Ts3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc"
    "2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL"
    "4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lX"
    "dQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)
message = crypto.decrypt(body, "477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149")
print(f"POST decrypt     -> {message.text!r}")

reply = crypto.encrypt_reply("<xml><Content>hello back</Content></xml>", "1372623149", reply_to=message)
print(f"     encrypt     -> {reply.render()}")
opened = crypto.decrypt(reply.render(), reply.msg_signature, reply.timestamp, reply.nonce)
print(f"     round trip  -> {opened.text!r}")
