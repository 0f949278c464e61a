"""Wiring: configuration, channel adapters, web app, CLI, scheduler and sender."""
