"""WebAuthn passkeys: registration and authentication ceremonies, credentials per tenant."""
