"""The refusals every feature shares: one text each, so a role is refused the same way everywhere."""

from __future__ import annotations

from common.i18n import N_

# a command declared with requires=Role.COORDINATOR, or a role lost before the write
DENIED = N_("抱歉，只有协调员或管理员可以这样做。")
# the person manages organizations, but not the one this activity or request belongs to
ORG_DENIED = N_("抱歉，只有该组织的协调员或管理员可以这样做。")
