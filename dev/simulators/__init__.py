"""Provider simulators for veo-relay: one Flask app speaking every Veo dialect.

Run: python -m dev.simulators --host 127.0.0.1 --port 8090. See README.md.
"""
