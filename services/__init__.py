"""Domain services: keyword-only functions that take the session. No platform code here."""
