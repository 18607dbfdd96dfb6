"""Glue between the pure rules (`core/`), the clients and the store; used by `defs/` and the CLI."""
