"""Repositories: the only code that builds SQL. They add and query, and never commit."""
