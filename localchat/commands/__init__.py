"""The `localchat` subcommands: each parses its flags and delegates to a service."""
