"""Official Account callbacks, from the documented examples (the receive-message docs)."""

from __future__ import annotations

import json

import pytest

from wxcallback.messages import (
    ClickEvent,
    GenericEvent,
    GenericMessage,
    ImageMessage,
    LinkMessage,
    LocationEvent,
    LocationMessage,
    LocationSelectEvent,
    MassSendJobFinishEvent,
    PicWeixinEvent,
    Platform,
    ScanCodeWaitMsgEvent,
    ScanEvent,
    ShortVideoMessage,
    SubscribeEvent,
    SuccessReply,
    TemplateSendJobFinishEvent,
    TextMessage,
    UnsubscribeEvent,
    VideoMessage,
    ViewEvent,
    ViewMiniProgramEvent,
    VoiceMessage,
    parse_message,
)

OA = Platform.OFFICIAL_ACCOUNT
HEAD = ("<ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
        "<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>"
        "<CreateTime>1714112445</CreateTime>")


def xml(body: str) -> str:
    return f"<xml>{HEAD}{body}</xml>"


def event(name: str, extra: str = "") -> str:
    return xml(f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{name}]]></Event>{extra}")


def test_text_message_exposes_content_sender_receiver_and_ints() -> None:
    message = parse_message(xml("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content>"
                                "<MsgId>1234567890123456</MsgId><MsgDataId>xxxx</MsgDataId><Idx>2</Idx>"), OA)
    assert isinstance(message, TextMessage)
    assert message.platform is OA
    assert (message.msg_type, message.event) == ("text", None)
    assert message.content == "this is a test"
    assert message.source == "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
    assert message.target == "gh_97417a04a28d"
    assert message.create_time == 1714112445
    assert message.msg_id == 1234567890123456
    assert message.idx == 2
    assert message.msg_data_id is None  # not a number: read as absent, kept raw
    assert message.raw["MsgDataId"] == "xxxx"
    assert message.is_user_message and not message.is_event


def test_image_voice_video_shortvideo_location_link() -> None:
    image = parse_message(xml("<MsgType>image</MsgType><PicUrl>http://p/x.jpg</PicUrl><MediaId>m1</MediaId>"
                              "<MsgId>1</MsgId>"), OA)
    assert isinstance(image, ImageMessage) and (image.pic_url, image.media_id) == ("http://p/x.jpg", "m1")

    voice = parse_message(xml("<MsgType>voice</MsgType><MediaId>m2</MediaId><Format>amr</Format>"
                              "<Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>2</MsgId>"), OA)
    assert isinstance(voice, VoiceMessage)
    assert (voice.media_id, voice.format, voice.recognition) == ("m2", "amr", "腾讯微信团队")
    plain_voice = parse_message(xml("<MsgType>voice</MsgType><MediaId>m2</MediaId><MsgId>3</MsgId>"), OA)
    assert isinstance(plain_voice, VoiceMessage) and plain_voice.recognition is None

    video = parse_message(xml("<MsgType>video</MsgType><MediaId>m3</MediaId><ThumbMediaId>t3</ThumbMediaId>"
                              "<MsgId>4</MsgId>"), OA)
    assert isinstance(video, VideoMessage) and (video.media_id, video.thumb_media_id) == ("m3", "t3")
    short = parse_message(xml("<MsgType>shortvideo</MsgType><MediaId>m4</MediaId><ThumbMediaId>t4</ThumbMediaId>"
                              "<MsgId>5</MsgId>"), OA)
    assert isinstance(short, ShortVideoMessage) and short.msg_type == "shortvideo"

    location = parse_message(xml("<MsgType>location</MsgType><Location_X>23.134521</Location_X>"
                                 "<Location_Y>113.358803</Location_Y><Scale>20</Scale>"
                                 "<Label><![CDATA[位置信息]]></Label><MsgId>6</MsgId>"), OA)
    assert isinstance(location, LocationMessage)
    assert (location.latitude, location.longitude, location.scale, location.label) == (
        23.134521, 113.358803, 20, "位置信息")

    link = parse_message(xml("<MsgType>link</MsgType><Title>公众平台官网链接</Title><Description>d</Description>"
                             "<Url>https://mp.weixin.qq.com</Url><MsgId>7</MsgId>"), OA)
    assert isinstance(link, LinkMessage)
    assert (link.title, link.description, link.url) == ("公众平台官网链接", "d", "https://mp.weixin.qq.com")


def test_subscribe_from_qr_code_exposes_scene_and_ticket() -> None:
    message = parse_message(event("subscribe", "<EventKey><![CDATA[qrscene_123123]]></EventKey>"
                                               "<Ticket><![CDATA[TICKET]]></Ticket>"), OA)
    assert isinstance(message, SubscribeEvent)
    assert (message.msg_type, message.event) == ("event", "subscribe")
    assert (message.event_key, message.scene, message.ticket) == ("qrscene_123123", "123123", "TICKET")
    plain = parse_message(event("subscribe"), OA)
    assert isinstance(plain, SubscribeEvent) and plain.scene is None and plain.ticket is None
    assert isinstance(parse_message(event("unsubscribe"), OA), UnsubscribeEvent)


@pytest.mark.parametrize("name", ["SCAN", "scan", "Scan"])
def test_event_names_are_matched_case_insensitively(name: str) -> None:
    message = parse_message(event(name, "<EventKey>123123</EventKey><Ticket>T</Ticket>"), OA)
    assert isinstance(message, ScanEvent)
    assert message.event == "scan"
    assert message.scene == "123123"
    assert message.raw["Event"] == name  # raw keeps what arrived


def test_location_click_view_events() -> None:
    location = parse_message(event("LOCATION", "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude>"
                                               "<Precision>119.385040</Precision>"), OA)
    assert isinstance(location, LocationEvent)
    assert (location.latitude, location.longitude, location.precision) == (23.137466, 113.352425, 119.38504)

    click = parse_message(event("CLICK", "<EventKey><![CDATA[V1001_TODAY_MUSIC]]></EventKey>"), OA)
    assert isinstance(click, ClickEvent) and click.event_key == "V1001_TODAY_MUSIC"

    view = parse_message(event("VIEW", "<EventKey>http://www.qq.com/</EventKey><MenuId>MENUID</MenuId>"), OA)
    assert isinstance(view, ViewEvent) and (view.url, view.menu_id) == ("http://www.qq.com/", "MENUID")

    mini = parse_message(event("view_miniprogram", "<EventKey>pages/index/index</EventKey><MenuId>M</MenuId>"), OA)
    assert isinstance(mini, ViewMiniProgramEvent) and mini.url == "pages/index/index"


def test_menu_events_with_nested_payloads() -> None:
    scan = parse_message(event("scancode_waitmsg", "<EventKey>6</EventKey><ScanCodeInfo><ScanType>qrcode</ScanType>"
                                                   "<ScanResult>2</ScanResult></ScanCodeInfo>"), OA)
    assert isinstance(scan, ScanCodeWaitMsgEvent) and (scan.scan_type, scan.scan_result) == ("qrcode", "2")

    pics = parse_message(event("pic_weixin", "<EventKey>6</EventKey><SendPicsInfo><Count>2</Count><PicList>"
                                             "<item><PicMd5Sum>aaa</PicMd5Sum></item>"
                                             "<item><PicMd5Sum>bbb</PicMd5Sum></item></PicList></SendPicsInfo>"), OA)
    assert isinstance(pics, PicWeixinEvent)
    assert (pics.count, pics.pic_md5_sums) == (2, ["aaa", "bbb"])
    one_pic = parse_message(event("pic_weixin", "<SendPicsInfo><Count>1</Count><PicList>"
                                                "<item><PicMd5Sum>ccc</PicMd5Sum></item></PicList></SendPicsInfo>"), OA)
    assert isinstance(one_pic, PicWeixinEvent) and one_pic.pic_md5_sums == ["ccc"]

    where = parse_message(event("location_select", "<EventKey>6</EventKey><SendLocationInfo>"
                                                   "<Location_X>23</Location_X><Location_Y>113</Location_Y>"
                                                   "<Scale>15</Scale><Label>广州</Label><Poiname>P</Poiname>"
                                                   "</SendLocationInfo>"), OA)
    assert isinstance(where, LocationSelectEvent)
    assert (where.latitude, where.longitude, where.scale, where.label, where.poiname) == (23.0, 113.0, 15, "广州", "P")


def test_job_finish_events_read_msgid_with_capital_d() -> None:
    template = parse_message(event("TEMPLATESENDJOBFINISH", "<MsgID>200163836</MsgID>"
                                                            "<Status><![CDATA[failed:user block]]></Status>"), OA)
    assert isinstance(template, TemplateSendJobFinishEvent)
    assert (template.msg_id, template.status) == (200163836, "failed:user block")

    mass = parse_message(event("MASSSENDJOBFINISH", "<MsgID>1988</MsgID><Status>send success</Status>"
                                                    "<TotalCount>100</TotalCount><FilterCount>80</FilterCount>"
                                                    "<SentCount>75</SentCount><ErrorCount>5</ErrorCount>"), OA)
    assert isinstance(mass, MassSendJobFinishEvent)
    assert (mass.msg_id, mass.total_count, mass.filter_count, mass.sent_count, mass.error_count) == (
        1988, 100, 80, 75, 5)


def test_unknown_types_parse_into_generic_objects_that_keep_every_field() -> None:
    unknown_event = parse_message(event("kf_not_yet_documented", "<KfAccount>test1@test</KfAccount>"), OA)
    assert type(unknown_event) is GenericEvent
    assert unknown_event.event == "kf_not_yet_documented"
    assert unknown_event.raw["KfAccount"] == "test1@test"
    unknown = parse_message(xml("<MsgType>miniprogrampage</MsgType><Title>t</Title><MsgId>9</MsgId>"), OA)
    assert type(unknown) is GenericMessage
    assert unknown.msg_type == "miniprogrampage" and unknown.raw["Title"] == "t"
    assert unknown.to_dict()["raw"]["Title"] == "t"


def test_json_push_from_the_encryption_doc_parses_with_ints_kept() -> None:
    # the decrypted message of the OA encryption doc's worked example (its JSON sample)
    plaintext = ('{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY",'
                 '"CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}')
    message = parse_message(plaintext, "official-account")
    assert isinstance(message, GenericEvent)
    assert (message.event, message.create_time, message.raw["debug_str"]) == ("debug_demo", 1714112445, "hello world")


def test_no_reply_answer_is_success_and_to_dict_is_json() -> None:
    message = parse_message(xml("<MsgType>text</MsgType><Content>hi</Content><MsgId>42</MsgId>"), OA)
    assert message.no_reply == SuccessReply()
    data = message.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["platform"] == "official-account" and data["content"] == "hi" and data["msg_id"] == 42
    assert data["no_reply"] == "success" and data["type"] == "TextMessage"


def test_cdata_and_plain_text_read_the_same() -> None:
    with_cdata = parse_message(xml("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[a<b&c]]></Content>"), OA)
    without = parse_message(xml("<MsgType>text</MsgType><Content>a&lt;b&amp;c</Content>"), OA)
    assert isinstance(with_cdata, TextMessage) and isinstance(without, TextMessage)
    assert with_cdata.content == without.content == "a<b&c"


def test_bytes_and_str_inputs_give_the_same_message() -> None:
    text = xml("<MsgType>text</MsgType><Content>你好</Content><MsgId>1</MsgId>")
    from_bytes = parse_message(text.encode("utf-8"), OA)
    assert isinstance(from_bytes, TextMessage) and from_bytes.content == "你好"
    assert from_bytes.raw == parse_message(text, OA).raw
    with_bom = parse_message(b"\xef\xbb\xbf  " + text.encode("utf-8"), OA)
    assert with_bom.raw == from_bytes.raw
