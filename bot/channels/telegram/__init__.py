"""Telegram channel (aiogram 3): convert, render, sender, channel, settings."""
