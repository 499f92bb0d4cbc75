"""A file's size in words every language reads: bytes under 1 KB, KB under 1 MB, MB above."""

import pytest

from portal.web.sizes import file_size_text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (40, "40 B"), (1023, "1023 B"), (1024, "1.0 KB"), (1536, "1.5 KB"),
    (40 * 1024 + 100, "40.1 KB"), (1024 * 1024 - 1, "1.0 MB"), (1024 * 1024, "1.0 MB"),
    (25 * 1024 * 1024 + 300 * 1024, "25.3 MB"), (None, "—"),
])
def test_file_size_text(size, text) -> None:
    assert file_size_text(size) == text


def test_pages_use_it(app) -> None:
    with app.app_context():
        rendered = app.jinja_env.from_string("{{ file_size(40) }}").render()
    assert rendered == "40 B"
