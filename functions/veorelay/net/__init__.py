"""Outbound HTTP on a user's behalf: URL rules, the SSRF-guarded session, webhook signing and delivery."""
