"""管理后台: a coordinator or admin gets a one-time link (10 minutes) that signs them in to the web console."""

from __future__ import annotations

from common.i18n import _
from handlers.messages import Link
from handlers.permissions import DENIED
from handlers.turn import FeatureRouter, Role, Turn
from handlers.words import load_words
from services.people import managed_organizations
from services.web_auth import LINK_TTL, create_login_link

router = FeatureRouter("web")


def login_path(token: str) -> str:
    return f"/admin/login/{token}"


@router.command("webadmin", words=tuple(load_words("web_words")["login"]), requires=Role.COORDINATOR)
async def web_login(turn: Turn, _arg: str) -> None:
    assert turn.person.id is not None
    if not await managed_organizations(turn.session, person_id=turn.person.id, admin=await turn.admin()):
        turn.say(DENIED)
        return
    if not turn.options.public_base_url:
        turn.say(_("服务器还没有设置 PUBLIC_BASE_URL，无法生成登录链接。请管理员在服务器上运行 `volunteer-bot web login-link`。"))
        return
    token = await create_login_link(turn.session, person_id=turn.person.id, identity_id=turn.identity.id, now=turn.now)
    minutes = int(LINK_TTL.total_seconds() // 60)
    reply = turn.say(_("管理后台的登录链接已生成，{minutes} 分钟内有效，只能使用一次。请不要转发给别人。", minutes=minutes))
    reply.links.append(Link(label=turn.text(_("打开管理后台")), url=turn.options.public_base_url + login_path(token)))
