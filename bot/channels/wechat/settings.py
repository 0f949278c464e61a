"""WeChat settings (``WECHAT_*``); ``bot.config.Settings`` composes them."""

from __future__ import annotations

from pydantic import BaseModel


class WeChatSettings(BaseModel):
    # empty token → channel off
    wechat_token: str = ""
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    wechat_encoding_aes_key: str = ""  # empty → plaintext mode
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_template_id: str = ""
    # the template's field keys and what fills each: title (the notice's first line), summary (the
    # rest), time (when it was sent); each at most 20 characters on one line
    wechat_template_fields: str = "thing1=title,time2=time"
    # where showqrcode pictures are served (tests point it at the fake API)
    wechat_mp_base: str = "https://mp.weixin.qq.com"

    @property
    def wechat_enabled(self) -> bool:
        """The ``/wechat`` callback is served."""
        return bool(self.wechat_token)

    @property
    def wechat_api_configured(self) -> bool:
        """The API (push messages, menu, QR codes) can be called."""
        return bool(self.wechat_app_id and self.wechat_app_secret)
