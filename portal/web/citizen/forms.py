"""WTForms for the citizen pages. They render fields and carry the CSRF token; what a tip is (its
fields, limits and choices) is portal/intake/schema.py, shared with the hotline and the API."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    MultipleFileField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)

from models import Channel
from portal.intake.schema import COUNTIES, TEXT_FIELDS, TipDraft, tip_draft


class ReportForm(FlaskForm):
    category = RadioField(_l("What kind of problem is it?"), default="", validate_choice=False)
    county = SelectField(_l("Where is the problem?"), default="", validate_choice=False)
    place = StringField(_l("Place (township, village, road, river section, landmark)"))
    occurred = StringField(_l("When did it happen? (date or period)"))
    responsible = TextAreaField(_l("Who is responsible? (enterprise or person, address)"))
    narrative = TextAreaField(_l("What happened?"))
    officials = TextAreaField(_l("Officials who cover for it (保护伞), if you know"))
    attachments = MultipleFileField(_l("Photos, videos and documents"))
    keep_photo_location = BooleanField(_l("Keep the location and time stored in my photos and "
                                          "videos as evidence"))
    real_name = BooleanField(_l("Report under my real name"))
    name = StringField(_l("Name"))
    phone = StringField(_l("Phone"))
    id_number = StringField(_l("ID card number"))
    address = StringField(_l("Address"))
    contact_ok = BooleanField(_l("Officers may contact me"))
    reward = BooleanField(_l("I am interested in a reward (有奖举报)"))
    # Honeypot: hidden from people by CSS and from screen readers; bots fill it in.
    website = StringField(_l("Leave this field empty"))
    # One-time submission token (portal/intake/receipts.py): a refresh of the receipt page files
    # nothing.
    submission = HiddenField()

    IDENTITY = ("name", "phone", "id_number", "address")

    def to_draft(self) -> TipDraft:
        """The tip as typed, by the one schema (portal/intake/schema.py); its values are
        checked when it is filed (filing.validate), every error at once."""
        identity = None
        if self.real_name.data:
            identity = {**{n: getattr(self, n).data or "" for n in self.IDENTITY},
                        "contact_ok": bool(self.contact_ok.data),
                        "reward": bool(self.reward.data)}
        return tip_draft({
            **{n: getattr(self, n).data or "" for n in TEXT_FIELDS},
            "category": self.category.data or None, "county": self.county.data or None,
            "keep_photo_location": bool(self.keep_photo_location.data), "identity": identity,
        }, Channel.ONLINE, values=False)

    def identity_typed_but_not_chosen(self) -> bool:
        """Personal details typed without ticking real name: ask instead of guessing."""
        return not self.real_name.data and any(
            (getattr(self, n).data or "").strip() for n in self.IDENTITY
        )


COUNTY_FIELD_CHOICES = ("unknown", *COUNTIES)


class FollowupForm(FlaskForm):
    receipt = StringField(_l("Your receipt"))
    # A message typed when the visit had expired, carried back to the reply form unsent.
    draft = HiddenField()


class ReplyForm(FlaskForm):
    token = HiddenField()  # the sealed follow-up handle (portal/intake/followup.py issue_token)
    submission = HiddenField()  # one-time: a refresh does not post the message twice
    body = TextAreaField(_l("Your message to the officers"))
    attachments = MultipleFileField(_l("Add evidence (optional)"))


class ReceiptDownloadForm(FlaskForm):
    receipt = HiddenField()


class ReceiptLanguageForm(FlaskForm):
    """The receipt page's language buttons: the report form's token re-derives the receipt."""

    submission = HiddenField()
    lang = HiddenField()
