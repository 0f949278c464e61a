"""What the core needs to know about its deployment, as plain typed values (no bot import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class CoreOptions:
    encryption_key: str
    admins: frozenset[str] = field(default_factory=frozenset)  # "channel:external_id"
    timezone: str = "Asia/Shanghai"
    page_size: int = 5
    public_base_url: str = ""  # where this server is reachable (download links); empty → no links
    flow_timeout: timedelta = timedelta(minutes=30)  # an idle dialog ends (draft deleted) after this
