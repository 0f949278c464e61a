"""WeChat official account (公众号) channel: security, convert, pages, api, sender, channel, settings."""
