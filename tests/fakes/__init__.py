"""Local fakes of remote platform HTTP APIs (real aiohttp servers on loopback)."""
