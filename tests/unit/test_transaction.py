"""portal/transaction.py: a block's work is committed whole, or rolled back whole on any
exception (an interrupt too), which goes on to the caller."""

from __future__ import annotations

from typing import cast

import pytest
from sqlalchemy.orm import Session

from portal.transaction import transaction


class _Session:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def commit(self) -> None:
        self.calls.append("commit")

    def rollback(self) -> None:
        self.calls.append("rollback")


def test_commits_on_success() -> None:
    session = _Session()
    with transaction(cast(Session, session)):  # a stand-in: commit and rollback are all it uses
        session.calls.append("work")
    assert session.calls == ["work", "commit"]


@pytest.mark.parametrize("error", [ValueError("refused"), KeyboardInterrupt()])
def test_rolls_back_and_raises_on_any_exception(error: BaseException) -> None:
    session = _Session()
    with pytest.raises(type(error)), transaction(cast(Session, session)):
        session.calls.append("work")
        raise error
    assert session.calls == ["work", "rollback"]
