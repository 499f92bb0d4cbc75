"""Error pages on the staff side keep the staff layout (issue 8's follow-up): a signed-in staff
member, or anyone on a staff path, meets a 403 or 404 with the staff menu (when signed in), in
words and in their language; the citizen side keeps the citizen layout."""

from __future__ import annotations

from flask_babel import force_locale, gettext

STAFF_NAV = 'class="staff-nav'
CITIZEN_LINK = 'href="/report"'  # the citizen layout's footer


def words(app, lang: str, text: str) -> str:
    with app.test_request_context(), force_locale(lang):
        return gettext(text)


def test_a_signed_in_officer_meets_errors_in_the_staff_layout(app, staff) -> None:
    uid = staff.create("officer", "yanji")
    browser = app.test_client()
    staff.login(browser, "officer", uid)
    for lang in ("zh", "ko", "en"):
        for path in ("/staff/tips/999999", "/staff/no-such-page", "/no-such-page"):
            page = browser.get(f"{path}?lang={lang}")
            text = page.get_data(as_text=True)
            assert page.status_code == 404, path
            assert STAFF_NAV in text and 'href="/staff/keys"' in text, path
            assert words(app, "zh_Hans" if lang == "zh" else lang,
                         "This page does not exist.") in text
            assert words(app, "zh_Hans" if lang == "zh" else lang,
                         "Back to the staff home page") in text
            assert CITIZEN_LINK not in text, path
    forbidden = browser.get("/admin/users?lang=ko")
    text = forbidden.get_data(as_text=True)
    assert forbidden.status_code == 403 and STAFF_NAV in text
    assert words(app, "ko", "You are not allowed to see this page.") in text


def test_staff_paths_keep_the_staff_layout_for_those_not_signed_in(app, client) -> None:
    for path in ("/staff/no-such-page", "/audit/no-such-page", "/liaison/no-such-page",
                 "/admin/no-such-page"):
        page = client.get(f"{path}?lang=en")
        text = page.get_data(as_text=True)
        assert page.status_code == 404, path
        assert "Qingliu staff" in text and 'href="/staff/login"' in text, path
        assert STAFF_NAV not in text and CITIZEN_LINK not in text, path
        assert "This page does not exist." in text


def test_the_citizen_side_keeps_the_citizen_layout(client) -> None:
    for path in ("/no-such-page", "/followup/no-such-page", "/staffing"):
        page = client.get(f"{path}?lang=en")
        text = page.get_data(as_text=True)
        assert page.status_code == 404
        assert CITIZEN_LINK in text and "Qingliu staff" not in text, path


def test_one_time_staff_links_are_staff_pages_without_the_citizens_promises(client) -> None:
    """A reset or first sign-in link is a staff page: the citizen footer (its promise that no
    cookie is kept, its report link) would not be true there."""
    for path in ("/reset/not-a-token", "/welcome/not-a-token"):
        page = client.get(path)
        text = page.get_data(as_text=True)
        assert page.status_code in (200, 404, 410), path
        assert 'class="staff"' in text, path
        assert CITIZEN_LINK not in text, path


def test_error_pages_are_titled_in_words_not_codes(app, client) -> None:
    """A browser tab and a screen reader read the title: "页面不存在 — 清流", never "404 — 清流"."""
    import re

    for path in ("/no-such-page", "/staff/no-such-page"):
        for lang, locale in (("zh", "zh_Hans"), ("ko", "ko"), ("en", "en")):
            page = client.get(f"{path}?lang={lang}").get_data(as_text=True)
            title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
            assert words(app, locale, "Page not found") in title, (path, title)
            assert "404" not in title, (path, title)
