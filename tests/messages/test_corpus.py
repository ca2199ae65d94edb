"""Every published callback sample in tests/messages/corpus parses as the platform meant it.

The corpus holds samples carried over from the platforms' documentation and from the
test data of other WeChat / WeCom libraries (see its README). Each must parse to the
right class with the fields its index lists, typed attributes included, and no two
distinct samples may share a dedup key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wxcallback import messages as m
from wxcallback.messages import Message, Platform, parse_message

CORPUS = Path(__file__).parent / "corpus"
INDEX: list[dict[str, Any]] = json.loads((CORPUS / "index.json").read_text(encoding="utf-8"))

OA, WECOM, ROBOT = "official-account", "wecom-app", "wecom-robot"

# (platform, msg_type, event) -> the class it parses to; anything else is a generic class
EXPECTED: dict[tuple[str, str, str | None], type[Message]] = {
    **{(platform, kind, None): cls for platform in (OA, WECOM) for kind, cls in (
        ("text", m.TextMessage), ("image", m.ImageMessage), ("voice", m.VoiceMessage),
        ("video", m.VideoMessage), ("shortvideo", m.ShortVideoMessage), ("location", m.LocationMessage),
        ("link", m.LinkMessage))},
    **{(platform, "event", event): cls for platform in (OA, WECOM) for event, cls in (
        ("subscribe", m.SubscribeEvent), ("unsubscribe", m.UnsubscribeEvent), ("scan", m.ScanEvent),
        ("location", m.LocationEvent), ("click", m.ClickEvent), ("view", m.ViewEvent),
        ("view_miniprogram", m.ViewMiniProgramEvent), ("scancode_push", m.ScanCodePushEvent),
        ("scancode_waitmsg", m.ScanCodeWaitMsgEvent), ("pic_sysphoto", m.PicSysPhotoEvent),
        ("pic_photo_or_album", m.PicPhotoOrAlbumEvent), ("pic_weixin", m.PicWeixinEvent),
        ("location_select", m.LocationSelectEvent), ("templatesendjobfinish", m.TemplateSendJobFinishEvent),
        ("masssendjobfinish", m.MassSendJobFinishEvent))},
    **{(OA, "event", event): cls for event, cls in (
        ("publishjobfinish", m.PublishJobFinishEvent), ("subscribe_msg_popup_event", m.SubscribeMsgPopupEvent),
        ("subscribe_msg_change_event", m.SubscribeMsgChangeEvent),
        ("subscribe_msg_sent_event", m.SubscribeMsgSentEvent), ("kf_create_session", m.KfCreateSessionEvent),
        ("kf_close_session", m.KfCloseSessionEvent), ("kf_switch_session", m.KfSwitchSessionEvent),
        ("user_enter_tempsession", m.UserEnterTempSessionEvent), ("wxa_media_check", m.MediaCheckEvent))},
    **{(WECOM, "event", event): cls for event, cls in (
        ("enter_agent", m.EnterAgentEvent), ("batch_job_result", m.BatchJobResultEvent),
        ("change_contact", m.ChangeContactEvent), ("template_card_event", m.TemplateCardEvent),
        ("template_card_menu_event", m.TemplateCardMenuEvent), ("taskcard_click", m.TaskCardClickEvent),
        ("open_approval_change", m.OpenApprovalChangeEvent), ("kf_msg_or_event", m.KfMsgOrEvent),
        ("change_external_contact", m.ExternalContactChangeEvent),
        ("change_external_chat", m.ExternalChatChangeEvent), ("change_external_tag", m.ExternalTagChangeEvent),
        ("customer_acquisition", m.CustomerAcquisitionEvent))},
    **{(WECOM, "instruction", event): cls for event, cls in (
        ("suite_ticket", m.SuiteTicketInstruction), ("create_auth", m.CreateAuthInstruction),
        ("change_auth", m.ChangeAuthInstruction), ("cancel_auth", m.CancelAuthInstruction),
        ("reset_permanent_code", m.ResetPermanentCodeInstruction), ("change_contact", m.ChangeContactInstruction),
        ("register_corp", m.RegisterCorpInstruction),
        ("change_external_contact", m.ExternalContactChangeInstruction),
        ("change_external_chat", m.ExternalChatChangeInstruction),
        ("change_external_tag", m.ExternalTagChangeInstruction))},
    **{(OA, "instruction", event): cls for event, cls in (
        ("component_verify_ticket", m.ComponentVerifyTicketInstruction), ("authorized", m.AuthorizedInstruction),
        ("updateauthorized", m.UpdateAuthorizedInstruction), ("unauthorized", m.UnauthorizedInstruction),
        ("notify_third_fasteregister", m.FastRegisterInstruction))},
    **{(ROBOT, kind, None): cls for kind, cls in (
        ("text", m.RobotTextMessage), ("image", m.RobotImageMessage), ("mixed", m.RobotMixedMessage),
        ("voice", m.RobotVoiceMessage), ("file", m.RobotFileMessage), ("video", m.RobotVideoMessage),
        ("stream", m.StreamRefresh))},
    **{(ROBOT, "event", event): cls for event, cls in (
        ("enter_chat", m.EnterChatEvent), ("template_card_event", m.RobotTemplateCardEvent),
        ("feedback_event", m.FeedbackEvent))},
}


def _generic(platform: str, msg_type: str) -> type[Message]:
    if platform == ROBOT:
        return m.RobotGenericEvent if msg_type == "event" else m.RobotGenericMessage
    if msg_type == "instruction":
        return m.ComponentInstruction if platform == OA else m.SuiteInstruction
    return m.GenericEvent if msg_type in ("event", "device_event") else m.GenericMessage


# a field of the index -> the typed attribute that must read the same value, where a class has it
TYPED: dict[str, str] = {
    "Content": "content", "MsgId": "msg_id", "MsgID": "msg_id", "EventKey": "event_key", "MediaId": "media_id",
    "PicUrl": "pic_url", "Format": "format", "Recognition": "recognition", "Title": "title", "Url": "url",
    "Label": "label", "Status": "status", "Ticket": "ticket", "AgentID": "agent_id", "ChangeType": "change_type",
    "UserID": "user_id", "ExternalUserID": "external_user_id", "ChatId": "chat_id", "State": "state",
    "WelcomeCode": "welcome_code", "FailReason": "fail_reason", "TagType": "tag_type", "UpdateDetail": "update_detail",
    "JoinScene": "join_scene", "QuitScene": "quit_scene", "MemChangeCnt": "member_change_count",
    "LinkId": "link_id", "Token": "token", "OpenKfId": "open_kf_id", "KfAccount": "kf_account",
    "FromKfAccount": "from_kf_account", "ToKfAccount": "to_kf_account", "SessionFrom": "session_from",
    "SuiteId": "suite_id", "SuiteTicket": "suite_ticket", "AuthCode": "auth_code", "AuthCorpId": "auth_corp_id",
    "RegisterCode": "register_code", "ServiceCorpId": "service_corp_id", "ContactSync/AccessToken": "access_token",
    "AuthUserInfo/UserId": "auth_user_id", "TemplateId": "template_id", "ComponentVerifyTicket":
    "component_verify_ticket", "AuthorizerAppid": "authorizer_app_id", "AuthorizationCode": "authorization_code",
    "AuthorizationCodeExpiredTime": "authorization_code_expired_time", "PreAuthCode": "pre_auth_code",
    "TotalCount": "total_count", "SentCount": "sent_count", "ErrorCount": "error_count",
    "FilterCount": "filter_count", "BatchJob/JobId": "job_id", "BatchJob/JobType": "job_type",
    "BatchJob/ErrCode": "err_code", "SendPicsInfo/Count": "count", "ScanCodeInfo/ScanType": "scan_type",
    "ScanCodeInfo/ScanResult": "scan_result", "PublishEventInfo/publish_id": "publish_id",
    "PublishEventInfo/publish_status": "publish_status", "PublishEventInfo/article_id": "article_id",
    "TaskId": "task_id", "CardType": "card_type", "ResponseCode": "response_code",
    "msgid": "msg_id", "aibotid": "bot_id", "chatid": "chat_id", "chattype": "chat_type",
    "response_url": "response_url", "stream/id": "stream_id", "event/feedback_event/id": "feedback_id",
    "text/content": "content", "voice/content": "content", "FromUserName": "source", "ToUserName": "target",
    "CreateTime": "create_time", "from/userid": "source",
}


def _value(raw: Any, path: str) -> Any:
    value = raw
    for key in path.split("/"):
        if isinstance(value, list):
            value = value[int(key)] if key.isdigit() else value[0]  # the index lists a repeat's first
            if key.isdigit():
                continue
        assert isinstance(value, dict), f"{path}: {key!r} is not in an object"
        value = value[key]
    return value[0] if isinstance(value, list) else value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _sample(entry: dict[str, Any]) -> Message:
    return parse_message((CORPUS / entry["file"]).read_bytes(), entry["platform"])


def test_the_corpus_is_large_and_covers_every_family() -> None:
    assert len(INDEX) >= 200
    families = {entry["file"].split("/")[0] for entry in INDEX}
    assert families >= {"official-account", "wecom-app", "wecom-suite", "open-platform", "miniprogram",
                        "wecom-robot", "wecom-kf", "wecom-contact"}
    assert sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*")) == sorted(e["file"] for e in INDEX)


@pytest.mark.parametrize("entry", INDEX, ids=[entry["file"] for entry in INDEX])
def test_every_sample_parses_to_its_class_with_its_fields(entry: dict[str, Any]) -> None:
    message = _sample(entry)
    assert (message.msg_type, message.event) == (entry["msg_type"], entry["event"])
    key = (entry["platform"], entry["msg_type"], entry["event"])
    assert type(message) is EXPECTED.get(key, _generic(entry["platform"], entry["msg_type"]))
    for path, expected in entry["fields"].items():
        assert _text(_value(message.raw, path)) == expected, path
        attribute = TYPED.get(path)
        if attribute is not None and hasattr(message, attribute):
            typed = getattr(message, attribute)
            if typed is None and not expected.lstrip("-").isdigit():
                continue  # a doc placeholder ("过期时间") where the platform sends a number
            assert _text(typed) == expected, f"{type(message).__name__}.{attribute}"
    json.dumps(message.to_dict())  # every sample is forwardable as JSON


def test_no_two_distinct_samples_share_a_dedup_key() -> None:
    keys: dict[str, str] = {}
    for entry in INDEX:
        key = _sample(entry).dedup_key
        assert key not in keys, f"{entry['file']} and {keys.get(key)} share {key}"
        keys[key] = entry["file"]


def test_every_sample_re_read_is_the_same_callback() -> None:
    for entry in INDEX:
        assert _sample(entry).dedup_key == _sample(entry).dedup_key


def test_every_sample_has_a_platform_no_reply() -> None:
    for entry in INDEX:
        message = _sample(entry)
        expected = "success" if (entry["platform"] == OA or entry["msg_type"] == "instruction") else ""
        assert message.no_reply.body == expected, entry["file"]


def test_pictures_are_all_kept_whatever_the_shape() -> None:
    for entry in INDEX:
        message = _sample(entry)
        if isinstance(message, m.PicEvent) and message.count:
            assert len(message.pic_md5_sums) == message.count, entry["file"]


def test_item_lists_read_as_lists() -> None:
    popups = [_sample(e) for e in INDEX if e["event"] == "subscribe_msg_popup_event"]
    assert popups and all(isinstance(p, m.SubscribeMsgPopupEvent) and p.subscriptions for p in popups)
    for popup in popups:
        assert isinstance(popup, m.SubscribeMsgPopupEvent)
        assert all(entry["template_id"] and entry["status"] in ("accept", "reject", "ban", "filter", "cancel")
                   for entry in popup.subscriptions)
    sent = [_sample(e) for e in INDEX if e["event"] == "subscribe_msg_sent_event"]
    assert sent and all(isinstance(s, m.SubscribeMsgSentEvent) and s.results for s in sent)
    several = [s for s in popups + sent if len(getattr(s, "subscriptions", None) or getattr(s, "results")) > 1]
    assert several, "the corpus has a sample with several <List> entries"


def test_typed_attributes_read_something_for_most_samples() -> None:
    # guards the TYPED table against silently matching nothing
    checked = sum(1 for entry in INDEX for path in entry["fields"]
                  if path in TYPED and hasattr(_sample(entry), TYPED[path]))
    assert checked >= 600


@pytest.mark.parametrize("platform", [Platform.OFFICIAL_ACCOUNT, Platform.WECOM_APP])
def test_samples_parse_the_same_from_str_and_bytes(platform: Platform) -> None:
    for entry in INDEX:
        if entry["platform"] != platform.value:
            continue
        data = (CORPUS / entry["file"]).read_bytes()
        assert parse_message(data.decode("utf-8"), platform).raw == parse_message(data, platform).raw
