"""Telegram channel (the Bot API as JSON over aiohttp): convert, render, api, sender, channel, settings."""
