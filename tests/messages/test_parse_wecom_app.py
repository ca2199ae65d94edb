"""WeCom app callbacks: the vectors' plaintexts and the documented events (WeCom docs 90240, 90600)."""

from __future__ import annotations

import pytest

from wxcallback.messages import (
    BatchJobResultEvent,
    CancelAuthInstruction,
    ChangeContactEvent,
    CreateAuthInstruction,
    EmptyReply,
    EnterAgentEvent,
    GenericEvent,
    InactiveAlertEvent,
    LocationEvent,
    MessageParseError,
    OpenApprovalChangeEvent,
    Platform,
    ResetPermanentCodeInstruction,
    SuccessReply,
    SuiteInstruction,
    SuiteTicketInstruction,
    TaskCardClickEvent,
    TemplateCardEvent,
    TextMessage,
    parse_message,
)
from wxcallback.core.errors import ErrorCode, ParseError

WECOM = Platform.WECOM_APP


def event(name: str, extra: str = "", agent: str = "<AgentID>1</AgentID>") -> str:
    return ("<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName>"
            f"<![CDATA[ZhangSan]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType>"
            f"<![CDATA[event]]></MsgType><Event><![CDATA[{name}]]></Event>{agent}{extra}</xml>")


@pytest.mark.parametrize(("case", "sender", "content", "msg_id", "agent_id"), [
    ("E01", "mycreate", "hello", 4561255354251345929, 218),
    ("E02", "ZhangSan", "你好，世界！企业微信回调测试。", 1456453720, 1000002),
    ("E17", "mycreate", "hello", 4561255354251345929, 218),  # official DecryptMsg sample, CDATA + newlines
    ("E18", "ChenJiaShun", "你好", 1456453720, 1000002),  # Python SDK sample, no CDATA
    ("E12", "mycreate", "hello", 4561255354251345929, 218),  # JSON callback format
    ("E16", "mycreate", "hello", 4561255354251345929, 218),  # Go SDK JSON sample
])
def test_vector_plaintexts_parse_into_text_messages(plaintexts: dict[str, str], case: str, sender: str,
                                                     content: str, msg_id: int, agent_id: int) -> None:
    message = parse_message(plaintexts[case], WECOM)
    assert isinstance(message, TextMessage)
    assert (message.source, message.content, message.msg_id, message.agent_id) == (sender, content, msg_id,
                                                                                  agent_id)
    assert message.dedup_key.startswith(f"msgid:{msg_id}:")
    assert message.no_reply == EmptyReply()


def test_malformed_json_sample_gives_the_parse_error(plaintexts: dict[str, str]) -> None:
    # E19: the official JSON sample's own plaintext, '"FromUserName": :mycreate"'
    with pytest.raises(MessageParseError) as caught:
        parse_message(plaintexts["E19"], WECOM)
    assert isinstance(caught.value, ParseError)
    assert caught.value.code == ErrorCode.PARSE_XML_ERROR and int(caught.value.code) == -40002
    assert "not valid JSON" in str(caught.value)


def test_app_events() -> None:
    enter = parse_message(event("enter_agent", "<EventKey><![CDATA[]]></EventKey>"), WECOM)
    assert isinstance(enter, EnterAgentEvent) and enter.agent_id == 1

    location = parse_message(event("LOCATION", "<Latitude>23.104</Latitude><Longitude>113.320</Longitude>"
                                               "<Precision>65.000</Precision><AppType>wxwork</AppType>"), WECOM)
    assert isinstance(location, LocationEvent) and location.app_type == "wxwork"

    job = parse_message(event("batch_job_result", "<BatchJob><JobId><![CDATA[S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4]]>"
                                                  "</JobId><JobType><![CDATA[sync_user]]></JobType><ErrCode>0</ErrCode>"
                                                  "<ErrMsg><![CDATA[ok]]></ErrMsg></BatchJob>"), WECOM)
    assert isinstance(job, BatchJobResultEvent)
    assert (job.job_type, job.err_code, job.err_msg) == ("sync_user", 0, "ok")

    contact = parse_message(event("change_contact", "<ChangeType>create_user</ChangeType><UserID>zhangsan</UserID>",
                                  agent=""), WECOM)
    assert isinstance(contact, ChangeContactEvent)
    assert (contact.change_type, contact.user_id, contact.agent_id) == ("create_user", "zhangsan", None)

    approval = parse_message(event("open_approval_change", "<ApprovalInfo><ThirdNo>201806010001</ThirdNo>"
                                                           "<OpenSpStatus>1</OpenSpStatus></ApprovalInfo>"), WECOM)
    assert isinstance(approval, OpenApprovalChangeEvent)
    assert approval.approval_info == {"ThirdNo": "201806010001", "OpenSpStatus": "1"}

    alert = parse_message(event("inactive_alert", "<EffectTime>1692000000</EffectTime>"), WECOM)
    assert isinstance(alert, InactiveAlertEvent) and alert.effect_time == 1692000000


def test_template_card_event_reads_selected_items() -> None:
    message = parse_message(event("template_card_event", (
        "<EventKey><![CDATA[key111]]></EventKey><TaskId><![CDATA[taskid111]]></TaskId>"
        "<CardType><![CDATA[vote_interaction]]></CardType><ResponseCode><![CDATA[RESPONSE]]></ResponseCode>"
        "<SelectedItems><SelectedItem><QuestionKey><![CDATA[QuestionKey1]]></QuestionKey>"
        "<OptionIds><OptionId><![CDATA[OptionId1]]></OptionId><OptionId><![CDATA[OptionId2]]></OptionId>"
        "</OptionIds></SelectedItem><SelectedItem><QuestionKey><![CDATA[QuestionKey2]]></QuestionKey>"
        "<OptionIds><OptionId><![CDATA[OptionId3]]></OptionId></OptionIds></SelectedItem></SelectedItems>")), WECOM)
    assert isinstance(message, TemplateCardEvent)
    assert (message.event_key, message.task_id, message.card_type, message.response_code) == (
        "key111", "taskid111", "vote_interaction", "RESPONSE")
    assert message.selected_items == [
        {"question_key": "QuestionKey1", "option_ids": ["OptionId1", "OptionId2"]},
        {"question_key": "QuestionKey2", "option_ids": ["OptionId3"]},
    ]
    assert message.to_dict()["selected_items"] == message.selected_items


def test_taskcard_click_reads_agent_id_spelt_agentid() -> None:
    message = parse_message(event("taskcard_click", "<EventKey>key</EventKey><TaskId>t1</TaskId>",
                                  agent="<AgentId>7</AgentId>"), WECOM)
    assert isinstance(message, TaskCardClickEvent) and (message.agent_id, message.task_id) == (7, "t1")


def test_events_only_wecom_knows_are_generic_on_official_accounts() -> None:
    assert type(parse_message(event("enter_agent"), "official-account")) is GenericEvent
    assert type(parse_message(event("change_external_contact"), "official-account")) is GenericEvent
    assert type(parse_message(event("kf_create_session"), WECOM)) is GenericEvent


SUITE = ("<xml><SuiteId><![CDATA[ww4asffe99e54c0fxxxx]]></SuiteId><InfoType><![CDATA[{info}]]></InfoType>"
         "<TimeStamp>1403610513</TimeStamp>{extra}</xml>")


def test_suite_instructions_answer_success() -> None:
    ticket = parse_message(SUITE.format(info="suite_ticket", extra="<SuiteTicket><![CDATA[asdfasfdasdfasdf]]>"
                                                                   "</SuiteTicket>"), WECOM)
    assert isinstance(ticket, SuiteTicketInstruction)
    assert (ticket.msg_type, ticket.event, ticket.suite_id) == ("instruction", "suite_ticket", "ww4asffe99e54c0fxxxx")
    assert (ticket.suite_ticket, ticket.create_time) == ("asdfasfdasdfasdf", 1403610513)
    assert ticket.no_reply == SuccessReply() and ticket.to_dict()["no_reply"] == "success"

    create = parse_message(SUITE.format(info="create_auth", extra="<AuthCode>AUTHCODE</AuthCode><State>s</State>"),
                           WECOM)
    assert isinstance(create, CreateAuthInstruction) and (create.auth_code, create.state) == ("AUTHCODE", "s")
    cancel = parse_message(SUITE.format(info="cancel_auth", extra="<AuthCorpId>wxf8b4f85f3a794e77</AuthCorpId>"),
                           WECOM)
    assert isinstance(cancel, CancelAuthInstruction) and cancel.auth_corp_id == "wxf8b4f85f3a794e77"
    reset = parse_message(SUITE.format(info="reset_permanent_code", extra="<AuthCode>C</AuthCode>"), WECOM)
    assert isinstance(reset, ResetPermanentCodeInstruction)
    other = parse_message(SUITE.format(info="not_yet_documented", extra="<ChangeType>create_user</ChangeType>"),
                          WECOM)
    assert type(other) is SuiteInstruction and other.event == "not_yet_documented"
    assert other.no_reply == SuccessReply()
