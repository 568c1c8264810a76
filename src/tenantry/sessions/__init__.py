"""Sessions, API keys and passkeys."""
