"""The referral procedure as data: one table of allowed transitions, checked in one place.

Each row says from which states an action may be taken, the state it leads to, who may take it,
which documents it needs, whether a reason is required, and which deadline (referral/deadlines.py
RULES) it starts. The pages, the API and the tests ask this table what is allowed; nothing else
repeats the rules. Sources: 《行政执法机关移送涉嫌犯罪案件的规定》(国务院令第310号) and
《环境保护行政执法与刑事司法衔接工作办法》(环环监〔2017〕17号), cited per row.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.StrEnum):
    DRAFT = "draft"  # 移送报告起草中
    AWAITING_APPROVAL = "awaiting_approval"  # 待负责人审批
    APPROVED = "approved"  # 已批准移送
    REJECTED = "rejected"  # 不批准 (reason recorded)
    HANDED_OVER = "handed_over"  # 已移送
    RECEIPT_SIGNED = "receipt_signed"  # 已签收回执
    MATERIAL_REQUESTED = "material_requested"  # 要求补充材料
    SUPPLEMENTED = "supplemented"  # 已补正
    FORWARDED = "forwarded"  # 移送其他管辖机关
    RETURNED = "returned"  # 退回
    FILED = "filed"  # 立案
    NOT_FILED = "not_filed"  # 不予立案
    OVERDUE = "overdue"  # 逾期未作决定
    RECONSIDERATION_REQUESTED = "reconsideration_requested"  # 已提请复议
    RECONSIDERATION_UPHELD = "reconsideration_upheld"  # 复议维持不予立案
    SUPERVISION_REQUESTED = "supervision_requested"  # 已提请立案监督
    EXHIBITS_HANDED_OVER = "exhibits_handed_over"  # 涉案物品已移交
    WITHDRAWN = "withdrawn"  # 撤案
    PROSECUTED = "prosecuted"  # 起诉
    NOT_PROSECUTED = "not_prosecuted"  # 不起诉
    RETURNED_FOR_PENALTY = "returned_for_penalty"  # 退回作行政处罚


class Actor(enum.StrEnum):
    OFFICER = "officer"  # a case officer of the 专案组 (or a head of the unit)
    HEAD = "head"  # 负责人 of the bureau's unit
    LIAISON = "liaison"  # 联络员 of the receiving body


class Document(enum.StrEnum):
    INVESTIGATION_REPORT = "investigation_report"  # 案件调查报告
    INSPECTION_RECORD = "inspection_record"  # 现场检查（勘察）笔录
    INTERVIEW_RECORD = "interview_record"  # 询问笔录
    SAMPLING_RECORD = "sampling_record"  # 采样记录
    EXHIBIT_LIST = "exhibit_list"  # 涉案物品清单
    MEDIA = "media"  # 照片、音像资料
    MONITORING_REPORT = "monitoring_report"  # 监测、检验报告
    EXPERT_OPINION = "expert_opinion"  # 认定意见
    PENALTY_DECISION = "penalty_decision"  # 行政处罚决定书
    TRANSFER_LETTER = "transfer_letter"  # 案件移送书 (generated at handover)
    RECEIPT = "receipt"  # 回执
    DECISION = "decision"  # 立案 / 不予立案 / 撤案 … 决定书
    RECONSIDERATION_REQUEST = "reconsideration_request"  # 复议申请
    SUPERVISION_REQUEST = "supervision_request"  # 立案监督申请
    OTHER = "other"


S, A, D = State, Actor, Document
_BEFORE_DECISION = (S.RECEIPT_SIGNED, S.SUPPLEMENTED)
_AFTER_FILING = (S.FILED, S.EXHIBITS_HANDED_OVER)


@dataclass(frozen=True)
class Transition:
    sources: tuple[State, ...]
    action: str
    target: State
    actor: Actor
    documents: tuple[Document, ...] = ()  # must be attached to the case or with the action
    needs_reason: bool = False
    starts: str | None = None  # a referral/deadlines.py step, or None
    # The legal citation is data, in the words of the regulation (310号 第5条; 17号 第9条); what
    # it says is a key that each face puts into its reader's language (a Flask-free table here).
    basis: str = ""
    note: str = ""


TRANSITIONS: tuple[Transition, ...] = (
    Transition((S.DRAFT,), "submit", S.AWAITING_APPROVAL, A.OFFICER,
               documents=(D.INVESTIGATION_REPORT,), starts="referral.approve",
               basis="310号 第5条; 17号 第5条", note="head_decides_3_days"),
    Transition((S.AWAITING_APPROVAL,), "approve", S.APPROVED, A.HEAD,
               starts="referral.handover", basis="310号 第5条; 17号 第6条",
               note="hand_over_24_hours"),
    Transition((S.AWAITING_APPROVAL,), "reject", S.REJECTED, A.HEAD, needs_reason=True,
               basis="310号 第5条", note="refusal_with_reasons"),
    Transition((S.REJECTED,), "revise", S.DRAFT, A.OFFICER),
    Transition((S.APPROVED,), "hand_over", S.HANDED_OVER, A.OFFICER,
               basis="17号 第6条", note="letter_and_materials"),
    Transition((S.HANDED_OVER,), "sign_receipt", S.RECEIPT_SIGNED, A.LIAISON,
               starts="referral.decide_filing", basis="17号 第7条; 第9条",
               note="decide_filing_3_days"),
    Transition(_BEFORE_DECISION[:1], "request_material", S.MATERIAL_REQUESTED, A.LIAISON,
               needs_reason=True, starts="referral.supplement",
               basis="17号 第8条", note="material_24_hours_supplement_3_days"),
    Transition((S.MATERIAL_REQUESTED,), "supplement", S.SUPPLEMENTED, A.OFFICER,
               starts="referral.decide_filing", basis="17号 第8条; 第9条"),
    Transition(_BEFORE_DECISION, "forward", S.FORWARDED, A.LIAISON, needs_reason=True,
               basis="17号 第9条", note="not_in_jurisdiction"),
    Transition(_BEFORE_DECISION, "return", S.RETURNED, A.LIAISON, needs_reason=True),
    Transition((*_BEFORE_DECISION, S.RECONSIDERATION_REQUESTED, S.SUPERVISION_REQUESTED,
                S.OVERDUE), "file", S.FILED, A.LIAISON, documents=(D.DECISION,),
               starts="referral.hand_over_exhibits",
               basis="17号 第9条; 第10条", note="filed_in_writing_exhibits_3_days"),
    Transition(_BEFORE_DECISION, "decline_filing", S.NOT_FILED, A.LIAISON,
               documents=(D.DECISION,), needs_reason=True,
               starts="referral.request_reconsideration",
               basis="17号 第11条", note="reconsideration_3_working_days"),
    Transition(_BEFORE_DECISION, "mark_overdue", S.OVERDUE, A.OFFICER,
               basis="17号 第12条", note="no_decision_in_period"),
    Transition((S.NOT_FILED,), "request_reconsideration", S.RECONSIDERATION_REQUESTED,
               A.OFFICER, documents=(D.RECONSIDERATION_REQUEST,),
               starts="referral.decide_reconsideration",
               basis="17号 第11条", note="police_decide_3_working_days"),
    Transition((S.RECONSIDERATION_REQUESTED,), "uphold_refusal", S.RECONSIDERATION_UPHELD,
               A.LIAISON, documents=(D.DECISION,), needs_reason=True, basis="17号 第11条"),
    Transition((S.NOT_FILED, S.OVERDUE, S.RECONSIDERATION_UPHELD, S.WITHDRAWN),
               "request_supervision", S.SUPERVISION_REQUESTED, A.OFFICER,
               documents=(D.SUPERVISION_REQUEST,), needs_reason=True,
               basis="17号 第12–13条", note="procuratorate_supervision"),
    Transition((S.FILED,), "hand_over_exhibits", S.EXHIBITS_HANDED_OVER, A.OFFICER,
               basis="17号 第10条"),
    Transition(_AFTER_FILING, "withdraw", S.WITHDRAWN, A.LIAISON, documents=(D.DECISION,),
               needs_reason=True),
    Transition(_AFTER_FILING, "prosecute", S.PROSECUTED, A.LIAISON),
    Transition(_AFTER_FILING, "not_prosecute", S.NOT_PROSECUTED, A.LIAISON,
               documents=(D.DECISION,), needs_reason=True,
               starts="referral.notify_non_prosecution", basis="17号 第18条",
               note="non_prosecution_notified_3_days"),
    Transition((*_AFTER_FILING, S.NOT_PROSECUTED), "return_for_penalty",
               S.RETURNED_FOR_PENALTY, A.LIAISON, needs_reason=True,
               basis="17号 第16条", note="returned_for_penalty"),
)

TERMINAL = frozenset({S.FORWARDED, S.RETURNED, S.PROSECUTED, S.RETURNED_FOR_PENALTY})
# Periods the liaison chooses when signing the receipt (17号 第9条: 3, 7 or 30 days).
FILING_PERIODS = {"normal": "referral.decide_filing", "check": "referral.decide_filing_check",
                  "major": "referral.decide_filing_major"}


class TransitionRefused(Exception):
    """The table does not allow this action now, or not for this actor."""

    def __init__(self, code: str, state: str, action: str) -> None:
        super().__init__(f"{action} from {state}: {code}")
        self.code = code
        self.state = state
        self.action = action


def allowed(state: str, actor: Actor | None = None) -> list[Transition]:
    """The actions open from `state` (for `actor`, when given), in table order."""
    return [t for t in TRANSITIONS
            if state in t.sources and (actor is None or t.actor == actor)]


def check(state: str, action: str, actor: Actor, documents: set[str], reason: str
          ) -> Transition:
    """The transition for this action, or TransitionRefused saying why not."""
    candidates = [t for t in TRANSITIONS if t.action == action]
    if not candidates:
        raise TransitionRefused("unknown_action", state, action)
    transition = next((t for t in candidates if state in t.sources), None)
    if transition is None:
        raise TransitionRefused("not_from_this_state", state, action)
    if transition.actor != actor:
        raise TransitionRefused("not_your_step", state, action)
    missing = [d for d in transition.documents if d not in documents]
    if missing:
        raise TransitionRefused("documents_missing", state, action)
    if transition.needs_reason and not reason.strip():
        raise TransitionRefused("reason_required", state, action)
    return transition
