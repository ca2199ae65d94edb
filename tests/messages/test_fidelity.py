"""What a handler sees and sends matches what the platform meant.

Whitespace around CDATA is layout; repeated elements are lists however many there are;
an empty string from a handler is "no reply"; an Official Account can hand a
conversation to customer service.
"""

from __future__ import annotations

import asyncio

import pytest

from wxcallback.messages import (
    EmptyReply,
    PicWeixinEvent,
    Platform,
    ReplyNotAllowedError,
    Router,
    SuccessReply,
    TextMessage,
    TextReply,
    TransferCustomerServiceReply,
    check_reply,
    parse_message,
    render_reply,
    reply_from_dict,
)
from wxcallback.messages.parser import _load_xml_expat

OA = Platform.OFFICIAL_ACCOUNT
WECOM = Platform.WECOM_APP
ROBOT = Platform.WECOM_ROBOT

# the layout of the platforms' own card documentation: spaces and newlines around CDATA
SPACED = """<xml>
  <ToUserName> <![CDATA[gh_fc0a06a20993]]> </ToUserName>
  <FromUserName> <![CDATA[oZI8Fj040-be6rlDohc6gkoPOQTQ]]> </FromUserName>
  <CreateTime> 1472551036 </CreateTime>
  <MsgType> <![CDATA[text]]> </MsgType>
  <Content><![CDATA[ keep my spaces ]]></Content>
  <MsgId> 6323232323 </MsgId>
</xml>"""


def test_whitespace_outside_cdata_is_not_part_of_a_field() -> None:
    message = parse_message(SPACED, OA)
    assert isinstance(message, TextMessage)
    assert (message.target, message.source) == ("gh_fc0a06a20993", "oZI8Fj040-be6rlDohc6gkoPOQTQ")
    assert (message.create_time, message.msg_id) == (1472551036, 6323232323)
    # inside CDATA the text is what the user typed
    assert message.content == " keep my spaces "
    reply = render_reply(TextReply("hi"), message, create_time=1)
    assert reply.startswith("<xml><ToUserName><![CDATA[oZI8Fj040-be6rlDohc6gkoPOQTQ]]></ToUserName>"
                            "<FromUserName><![CDATA[gh_fc0a06a20993]]></FromUserName>")


def test_plain_text_fields_are_trimmed_by_both_readings() -> None:
    flat = "<xml><MsgType>text</MsgType><FromUserName>\n  u1  \n</FromUserName><MsgId>1</MsgId></xml>"
    assert parse_message(flat, OA).source == "u1"
    assert _load_xml_expat(flat)["FromUserName"] == "u1"


def test_text_split_around_several_cdata_sections_keeps_only_their_content() -> None:
    body = "<xml><MsgType>text</MsgType><Content> <![CDATA[a]]>\n <![CDATA[b]]> </Content></xml>"
    assert parse_message(body, OA).raw["Content"] == "ab"


PIC_LISTS = """<xml><ToUserName><![CDATA[gh_e136c6e50636]]></ToUserName>
<FromUserName><![CDATA[oMgHVjngRipVsoxg6TuX3vz6glDg]]></FromUserName>
<CreateTime>1408090816</CreateTime><MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[pic_weixin]]></Event><EventKey><![CDATA[6]]></EventKey>
<SendPicsInfo><Count>2</Count>
<PicList><item><PicMd5Sum><![CDATA[5a75aaca956d97be686719218f275c6b]]></PicMd5Sum></item></PicList>
<PicList><item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList>
</SendPicsInfo></xml>"""


def test_one_pic_list_per_picture_keeps_every_picture() -> None:
    message = parse_message(PIC_LISTS, WECOM)
    assert isinstance(message, PicWeixinEvent)
    assert message.count == 2
    assert message.pic_md5_sums == ["5a75aaca956d97be686719218f275c6b", "1b5f7c23b5bf75682a53e7b6d163e185"]


def test_items_inside_one_pic_list_read_the_same() -> None:
    body = PIC_LISTS.replace("</item></PicList>\n<PicList><item>", "</item><item>")
    assert parse_message(body, OA).pic_md5_sums == parse_message(PIC_LISTS, OA).pic_md5_sums  # type: ignore[attr-defined]


def test_json_pic_lists_need_no_item_wrapper() -> None:
    body = ('{"ToUserName": "gh", "FromUserName": "u", "CreateTime": 1, "MsgType": "event", '
            '"Event": "pic_sysphoto", "SendPicsInfo": {"Count": 2, '
            '"PicList": [{"PicMd5Sum": "a"}, {"PicMd5Sum": "b"}]}}')
    assert parse_message(body, OA).pic_md5_sums == ["a", "b"]  # type: ignore[attr-defined]


def test_repeated_elements_stay_lists_in_raw() -> None:
    message = parse_message(PIC_LISTS, OA)
    assert isinstance(message.raw["SendPicsInfo"]["PicList"], list)
    assert len(message.raw["SendPicsInfo"]["PicList"]) == 2


TEXT = ("<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>")


@pytest.mark.parametrize(("platform", "body", "expected"), [
    (OA, TEXT, SuccessReply()),
    (WECOM, TEXT, EmptyReply()),
    (ROBOT, '{"msgid": "m", "aibotid": "b", "msgtype": "text", "text": {"content": "hi"}}', EmptyReply()),
])
def test_an_empty_string_from_a_handler_means_no_reply(platform: Platform, body: str, expected: object) -> None:
    router = Router()
    router.message()(lambda message: "")
    message = parse_message(body, platform)
    assert asyncio.run(router.dispatch(message)) == expected
    assert router.dispatch_sync(message) == expected


def test_transfer_to_customer_service_renders_as_the_platform_documents() -> None:
    message = parse_message(TEXT, OA)
    assert render_reply(TransferCustomerServiceReply(), message, create_time=1399197672) == (
        "<xml><ToUserName><![CDATA[u]]></ToUserName><FromUserName><![CDATA[gh]]></FromUserName>"
        "<CreateTime>1399197672</CreateTime><MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>")
    assert render_reply(TransferCustomerServiceReply("test1@test"), message, create_time=1399197672) == (
        "<xml><ToUserName><![CDATA[u]]></ToUserName><FromUserName><![CDATA[gh]]></FromUserName>"
        "<CreateTime>1399197672</CreateTime><MsgType><![CDATA[transfer_customer_service]]></MsgType>"
        "<TransInfo><KfAccount><![CDATA[test1@test]]></KfAccount></TransInfo></xml>")


def test_transfer_to_customer_service_is_refused_outside_official_accounts() -> None:
    with pytest.raises(ReplyNotAllowedError, match="only Official Accounts"):
        check_reply(TransferCustomerServiceReply(), parse_message(TEXT, WECOM))
    robot = parse_message('{"msgid": "m", "aibotid": "b", "msgtype": "text", "text": {"content": "hi"}}', ROBOT)
    with pytest.raises(ReplyNotAllowedError, match="only Official Accounts"):
        check_reply(TransferCustomerServiceReply(), robot)
    component = parse_message("<xml><AppId>wx1</AppId><CreateTime>1</CreateTime>"
                              "<InfoType>component_verify_ticket</InfoType></xml>", OA)
    with pytest.raises(ReplyNotAllowedError, match="literal success"):
        check_reply(TransferCustomerServiceReply(), component)


def test_transfer_round_trips_as_a_dict_for_forwarding_backends() -> None:
    for reply in (TransferCustomerServiceReply(), TransferCustomerServiceReply("kf@acct")):
        assert reply_from_dict(reply.to_dict(), OA) == reply
    with pytest.raises(Exception, match="has no 'transfer_customer_service'"):
        reply_from_dict({"type": "transfer_customer_service"}, WECOM)


@pytest.mark.parametrize("value", ["¹", "²³", "١٢", "-", "1e3", " 7 "])
def test_numbers_are_ascii_decimal_or_absent(value: str) -> None:
    message = parse_message(f"<xml><MsgType>text</MsgType><MsgId>{value}</MsgId></xml>", OA)
    assert message.msg_id == (7 if value.strip() == "7" else None)
    assert message.dedup_key
