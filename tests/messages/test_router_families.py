"""Router decorators for the callback families real accounts receive most."""

from __future__ import annotations

from pathlib import Path

from wxcallback.messages import Message, Router, parse_message

CORPUS = Path(__file__).parent / "corpus"


def _sample(path: str, platform: str) -> Message:
    return parse_message((CORPUS / path).read_bytes(), platform)


def _routed(router: Router, message: Message) -> str | None:
    handler = router.find_handler(message)
    return None if handler is None else handler(message)


def _contact(change_type: str, *, suite: bool = False) -> Message:
    if suite:
        body = (f"<xml><SuiteId>ww1</SuiteId><AuthCorpId>wx2</AuthCorpId><InfoType>change_external_contact"
                f"</InfoType><TimeStamp>1403610513</TimeStamp><ChangeType>{change_type}</ChangeType>"
                "<UserID>zhangsan</UserID><ExternalUserID>wm1</ExternalUserID></xml>")
    else:
        body = ("<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName><CreateTime>1</CreateTime>"
                "<MsgType>event</MsgType><Event>change_external_contact</Event>"
                f"<ChangeType>{change_type}</ChangeType><UserID>zhangsan</UserID>"
                "<ExternalUserID>wm1</ExternalUserID></xml>")
    return parse_message(body, "wecom-app")


def test_external_contact_routes_by_change_type_for_apps_and_suites() -> None:
    router = Router()
    router.external_contact("add_external_contact", "add_half_external_contact")(lambda m: "added")
    router.external_contact()(lambda m: f"other:{m.change_type}")
    for suite in (False, True):
        assert _routed(router, _contact("add_external_contact", suite=suite)) == "added"
        assert _routed(router, _contact("del_follow_user", suite=suite)) == "other:del_follow_user"


def test_contact_chat_and_tag_changes_have_their_own_decorators() -> None:
    router = Router()
    router.contact_change("create_user")(lambda m: "user created")
    router.external_chat("dismiss")(lambda m: "chat dismissed")
    router.external_tag()(lambda m: f"tag {m.change_type}")
    created = parse_message("<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName><CreateTime>1"
                            "</CreateTime><MsgType>event</MsgType><Event>change_contact</Event>"
                            "<ChangeType>create_user</ChangeType><UserID>u</UserID></xml>", "wecom-app")
    assert _routed(router, created) == "user created"
    dismissed = parse_message("<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName><CreateTime>1"
                              "</CreateTime><MsgType>event</MsgType><Event>change_external_chat</Event>"
                              "<ChatId>c</ChatId><ChangeType>dismiss</ChangeType></xml>", "wecom-app")
    assert _routed(router, dismissed) == "chat dismissed"
    tag = parse_message("<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName><CreateTime>1"
                        "</CreateTime><MsgType>event</MsgType><Event>change_external_tag</Event>"
                        "<Id>t</Id><TagType>tag</TagType><ChangeType>shuffle</ChangeType></xml>", "wecom-app")
    assert _routed(router, tag) == "tag shuffle"


def test_kf_job_subscription_ticket_and_authorization_decorators() -> None:
    router = Router()
    router.kf_message(lambda m: f"kf {m.open_kf_id}")
    router.job_finished(lambda m: f"job {m.event}")
    router.subscribe_message(lambda m: f"sub {m.event}")
    router.ticket(lambda m: f"ticket {m.event}")
    router.authorization(lambda m: f"auth {m.event}")
    assert _routed(router, _sample("wecom-kf/kf_msg_or_event.xml", "wecom-app")) == "kf wkxxxxxxx"
    job = parse_message("<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
                        "<MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>1</MsgID>"
                        "<Status>success</Status></xml>", "official-account")
    assert _routed(router, job) == "job templatesendjobfinish"
    popup = _sample("official-account/event_subscribe_msg_popup_event.xml", "official-account")
    assert _routed(router, popup) == "sub subscribe_msg_popup_event"
    ticket = parse_message("<xml><AppId>wx1</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket"
                           "</InfoType><ComponentVerifyTicket>T</ComponentVerifyTicket></xml>", "official-account")
    assert _routed(router, ticket) == "ticket component_verify_ticket"
    revoked = parse_message("<xml><AppId>wx1</AppId><CreateTime>1</CreateTime><InfoType>unauthorized</InfoType>"
                            "<AuthorizerAppid>wx2</AuthorizerAppid></xml>", "official-account")
    assert _routed(router, revoked) == "auth unauthorized"
    # nothing else is taken by these routes
    text = parse_message("<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
                         "<MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>", "official-account")
    assert router.find_handler(text) is None
