"""Odd URL strings for property tests (hypothesis), and a resolver that never leaves the machine
but fails like the real one: the real getaddrinfo, numeric-only, first (IP literals in any form,
bad IDNA labels and NUL bytes raise exactly what they raise in production), then a fixed answer
for names (`*.internal` private, `*.unresolvable` unknown, anything else public)."""
from __future__ import annotations

import socket

from hypothesis import strategies as st

_REAL_GETADDRINFO = socket.getaddrinfo
PUBLIC, PRIVATE = "93.184.215.14", "10.0.0.7"


def offline_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    try:
        return _REAL_GETADDRINFO(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    if str(host).rstrip(".").endswith(".unresolvable"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    address = PRIVATE if str(host).rstrip(".").endswith(".internal") else PUBLIC
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


# ---------------------------------------------------------------------------- strategies
ANY_CHAR = st.characters(exclude_categories=())  # every code point, lone surrogates included
SCHEMES = st.sampled_from(["https", "http", "HTTPS", "ftp", "file", "javascript", "", "https:", "h ttps"])
PORTS = st.one_of(
    st.just(""),
    st.integers(-5, 70_000).map(str),
    st.sampled_from(["0", "00", "+443", "-1", " 443", "443 ", "0x1bb", "\uff14\uff14\uff13", "99999999999999999999", "443:443"]),
    st.text(ANY_CHAR, max_size=6),
)
LABEL = st.text(st.characters(codec="ascii", categories=["L", "Nd"]), min_size=1, max_size=70)
HOSTS = st.one_of(
    st.builds(".".join, st.lists(LABEL, min_size=1, max_size=4)),  # names, some with 64+ char labels
    st.sampled_from([
        "example.com", "example.internal", "nowhere.unresolvable", "localhost", "metadata.google.internal",
        "127.0.0.1", "0", "0x7f.1", "2852039166", "017700000001", "169.254.169.254", "100.64.0.1", "[::1]",
        "[::ffff:169.254.169.254]", "[fe80::1%25eth0]", "[fd00::1]", "[64:ff9b::a9fe:a9fe]", "[2001:db8::1]",
        "[abc]", "[1.2.3.4]", "[v1.future]", "[::1", "::1]", "[::1]junk", "[]", "xn--", "xn--zz", "exämple..com",
        "\ud800.com", "a\x00b", "%31%32%37.0.0.1", "ex%61mple.com", "example.com.", "..", ".", "a" * 254,
        "\uff21.com", "example\u3002com", "[::1]@example.com",
    ]),
    st.text(ANY_CHAR, max_size=12),
    st.text(ANY_CHAR, max_size=10).map(lambda s: f"[{s}]"),
)
USERINFO = st.one_of(st.just(""), st.sampled_from(["user@", "user:pass@", ":@", "@", "a@b@"]), st.text(ANY_CHAR, max_size=5).map(lambda s: s + "@"))
TAILS = st.one_of(st.just("/"), st.just(""), st.text(ANY_CHAR, max_size=12), st.sampled_from(["/a?b#c", "/%00", "/\\..\\", "?x=[::1]", "#@evil"]))


@st.composite
def urls(draw) -> str:
    port = draw(PORTS)
    return f"{draw(SCHEMES)}://{draw(USERINFO)}{draw(HOSTS)}{':' + port if port else ''}{draw(TAILS)}"
