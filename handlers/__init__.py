"""Platform-neutral conversation logic. Imports nothing from aiogram, wechatpy or bot/."""
