"""The bottom layer: helpers every other layer may use (language, catalogs, taxonomy, text parsing).

Imports nothing from ``models``, ``services``, ``handlers`` or ``bot``.
"""
