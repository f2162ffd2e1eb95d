"""Platform-neutral use cases. They take plain values and an acting user, run in one unit of
work, enforce visibility, and raise `DomainError`s with user-readable messages."""
