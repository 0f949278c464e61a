"""CLI sub-command groups, one module per area (registered in bot/cli.py)."""
