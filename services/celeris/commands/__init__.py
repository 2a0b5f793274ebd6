"""The `celeris` subcommands: each parses its arguments and makes one call into the assembly or a client.

`celeris.cli` imports every module here explicitly (no dynamic loading), so the import contracts see them.
"""
