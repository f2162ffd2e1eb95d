"""Contacts: exact and fuzzy look-ups, recent lists.

Fuzzy matching is ranked in Python with rapidfuzz, but the rows it ranks are narrowed in SQL
first (see `like_patterns`), so a search never reads the whole table.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, Select, false, func, or_, select

from storage.models import Contact, Contract, Deal
from storage.repos.base import Repository

WORD = re.compile(r"[^\W_]+")
FUZZY_CANDIDATES = 2000  # rows ranked per search at most; enough for any team's near-matches


def like_patterns(text: str) -> list[str]:
    """Lower-case LIKE patterns that every plausible fuzzy match of `text` satisfies at least one of.

    Each word of 4+ letters contributes its first three and its last three letters; a shorter
    word contributes itself. A typo rarely hits both ends of a word, so "Jon Smitt" still finds
    "John Smith" (through "smi"), while unrelated names are never loaded.
    """
    patterns: set[str] = set()
    for word in WORD.findall(text.lower()):
        if len(word) <= 3:
            patterns.add(f"%{word}%")
        else:
            patterns.update((f"%{word[:3]}%", f"%{word[-3:]}%"))
    return sorted(patterns)


def matches_any(columns: Sequence[ColumnElement], patterns: Sequence[str]) -> ColumnElement[bool]:
    """SQL: some lower-cased column is LIKE some pattern."""
    if not patterns:
        return false()
    return or_(*(func.lower(col).like(p) for col in columns for p in patterns))


def owned_by(column: ColumnElement, owner_ids: Collection[int] | None) -> ColumnElement[bool] | None:
    """SQL filter for a visibility scope; None (admin) means no filter."""
    return None if owner_ids is None else column.in_(sorted(owner_ids))


class ContactRepository(Repository[Contact]):
    model = Contact

    def _live(self, owner_ids: Collection[int] | None = None) -> Select:
        stmt = select(Contact).where(Contact.deleted_at.is_(None))
        scope = owned_by(Contact.owner_id, owner_ids)
        return stmt if scope is None else stmt.where(scope)

    async def _all(self, stmt: Select) -> list[Contact]:
        return list((await self.session.execute(stmt)).scalars())

    async def with_phone_or_email(
        self, *, phone: str | None, email: str | None, exclude_id: int | None = None
    ) -> list[Contact]:
        """Live contacts with exactly this E.164 phone or lower-cased email (indexed columns)."""
        conditions = []
        if phone:
            conditions.append(Contact.phone == phone)
        if email:
            conditions.append(Contact.email == email)
        if not conditions:
            return []
        stmt = self._live().where(or_(*conditions)).order_by(Contact.id)
        if exclude_id is not None:
            stmt = stmt.where(Contact.id != exclude_id)
        return await self._all(stmt)

    async def fuzzy_candidates(
        self,
        text: str,
        *,
        owner_ids: Collection[int] | None = None,
        exclude_id: int | None = None,
        limit: int = FUZZY_CANDIDATES,
    ) -> list[Contact]:
        """Live contacts whose name or company shares a word fragment with `text`."""
        stmt = self._live(owner_ids).where(
            matches_any((Contact.name, Contact.company), like_patterns(text))
        )
        if exclude_id is not None:
            stmt = stmt.where(Contact.id != exclude_id)
        return await self._all(stmt.order_by(Contact.id.desc()).limit(limit))

    async def by_phone_ending(
        self, digits: str, *, owner_ids: Collection[int] | None, limit: int
    ) -> list[Contact]:
        stmt = self._live(owner_ids).where(Contact.phone.like(f"%{digits}"))
        return await self._all(stmt.order_by(Contact.id.desc()).limit(limit))

    async def by_email_start(
        self, prefix: str, *, owner_ids: Collection[int] | None, limit: int
    ) -> list[Contact]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = self._live(owner_ids).where(Contact.email.like(f"{escaped}%", escape="\\"))
        return await self._all(stmt.order_by(Contact.email).limit(limit))

    async def recent(self, *, owner_ids: Collection[int] | None, limit: int) -> list[Contact]:
        """Most recently touched (or created, if never touched) first."""
        touched = func.coalesce(Contact.last_touched_at, Contact.created_at)
        stmt = self._live(owner_ids).order_by(touched.desc(), Contact.id.desc()).limit(limit)
        return await self._all(stmt)

    async def contracts_of(self, contact_id: int) -> list[tuple[int, int]]:
        """(contract id, deal id) of every contract on the contact's deals."""
        stmt = (
            select(Contract.id, Deal.id)
            .join(Deal, Deal.id == Contract.deal_id)
            .where(Deal.contact_id == contact_id)
            .order_by(Contract.id)
        )
        return [(cid, did) for cid, did in await self.session.execute(stmt)]
