"""WeChat's own tables: reply pages waiting for "下一页", template-job reports, the shared access token.

The WeChat channel converts in and out and keeps no rows itself: it calls these functions with a
session. Each function that must survive a concurrent writer (a first row created by two processes
at once, a page taken twice) commits or rolls back itself and says so; the others leave the commit
to the caller.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from models.wechat import WeChatAccessToken, WeChatReplyPages, WeChatTemplateJob

# the Identity.channel whose users' reply pages live here (bot.channels.wechat.convert.CHANNEL)
REPLY_PAGES_CHANNEL = "wechat"
# how often taking a page retries after losing a race to a concurrent "下一页"
TAKE_PAGE_ATTEMPTS = 5


# ---- reply pages ------------------------------------------------------------------------------
async def save_reply_pages(session: AsyncSession, *, openid: str, pages: list[str], now: datetime) -> None:
    """The pages after the one just sent; none → forget what an earlier long reply left. Commits."""
    if not pages:
        # most replies fit one page: look before deleting, so they cost no write (SQLite's single
        # write lock is the bottleneck under load)
        if await session.get(WeChatReplyPages, openid) is not None:
            await session.exec(delete(WeChatReplyPages).where(WeChatReplyPages.openid == openid))  # type: ignore[call-overload]
            await session.commit()
        return
    row = await session.get(WeChatReplyPages, openid)
    if row is None:
        session.add(WeChatReplyPages(openid=openid, pages=pages, updated_at=now))
    else:
        row.pages, row.last_message_key, row.last_page = pages, None, None
        row.version += 1
        row.updated_at = now
        session.add(row)
    try:
        await session.commit()
    except IntegrityError:  # a concurrent first write for this user: take theirs over
        await session.rollback()
        await session.exec(update(WeChatReplyPages).where(WeChatReplyPages.openid == openid).values(  # type: ignore[call-overload]
            pages=pages, last_message_key=None, last_page=None, version=WeChatReplyPages.version + 1,
            updated_at=now))
        await session.commit()


async def forget_reply_pages(session: AsyncSession, *, openid: str) -> None:
    """Drop the pages an earlier long reply left (a new message came). The caller commits."""
    await session.exec(delete(WeChatReplyPages).where(WeChatReplyPages.openid == openid))  # type: ignore[call-overload]


async def take_next_page(session: AsyncSession, *, openid: str, message_key: str, now: datetime) -> str | None:
    """The next waiting page; a retry of the same "下一页" message gets the same page again. Commits.

    A page is taken with a compare-and-set on the row's version, retried a few times when a
    concurrent message took one first.
    """
    for _attempt in range(TAKE_PAGE_ATTEMPTS):
        row = await session.get(WeChatReplyPages, openid, populate_existing=True)
        if row is None:
            return None
        if row.last_message_key == message_key:
            return row.last_page
        if not row.pages:
            return None
        page = row.pages[0]
        result = await session.exec(  # type: ignore[call-overload]
            update(WeChatReplyPages)
            .where(WeChatReplyPages.openid == openid, WeChatReplyPages.version == row.version)
            .values(pages=row.pages[1:], last_message_key=message_key, last_page=page,
                    version=row.version + 1, updated_at=now))
        await session.commit()
        if result.rowcount == 1:
            return page
    return None


# ---- template-job reports ---------------------------------------------------------------------
async def record_template_job(session: AsyncSession, *, msg_id: int, openid: str, status: str,
                              now: datetime) -> None:
    """A TEMPLATESENDJOBFINISH report, once per message id (WeChat retries it). Commits."""
    if await session.get(WeChatTemplateJob, msg_id) is not None:
        return  # a retry of the same report
    session.add(WeChatTemplateJob(msg_id=msg_id, openid=openid, status=status, reported_at=now))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()


# ---- the shared access token ------------------------------------------------------------------
async def get_access_token(session: AsyncSession, *, app_id: str) -> WeChatAccessToken | None:
    """The stored token row of an app id (it may hold no token yet)."""
    return await session.get(WeChatAccessToken, app_id)


async def ensure_access_token_row(session: AsyncSession, *, app_id: str, now: datetime) -> None:
    """An (empty) token row to lock, created once whichever process comes first. Commits."""
    if await session.get(WeChatAccessToken, app_id) is not None:
        return
    session.add(WeChatAccessToken(app_id=app_id, token="", version=0, updated_at=now))
    try:
        await session.commit()
    except IntegrityError:  # another process created it first
        await session.rollback()


async def lock_access_token(session: AsyncSession, *, app_id: str) -> WeChatAccessToken:
    """The token row, locked for this transaction (the row must exist: :func:`ensure_access_token_row`).

    ``UPDATE … SET version = version`` takes the row lock on PostgreSQL and the write lock on
    SQLite, so the same statement serializes refreshers on both backends.
    """
    lock = update(WeChatAccessToken).where(WeChatAccessToken.app_id == app_id).values(
        version=WeChatAccessToken.version)
    await session.exec(lock)  # type: ignore[call-overload]
    row = await session.get(WeChatAccessToken, app_id, populate_existing=True)
    assert row is not None
    return row


async def save_access_token(session: AsyncSession, *, row: WeChatAccessToken, token: str, expires_at: datetime,
                            now: datetime) -> None:
    """A fresh token in the locked row, with its version bumped. Commits (and so releases the lock)."""
    row.token = token
    row.expires_at = expires_at
    row.version += 1
    row.updated_at = now
    session.add(row)
    await session.commit()
