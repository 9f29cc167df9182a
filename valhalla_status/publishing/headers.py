"""The HTTP headers the site's files are served with: one home for the rules.

``_headers`` (Netlify, Cloudflare Pages), ``serve`` and the S3 upload (``publish``) all take a
file's ``Content-Type`` and ``Cache-Control`` from here, so no host is told anything else.
Standard library only: ``serve`` and the upload import it.
"""

from __future__ import annotations

# What a shared cache (a CDN, a proxy) may serve without asking again; browsers always ask.
EDGE_SECONDS = 60
CACHE_CONTROL = f"public, max-age=0, s-maxage={EDGE_SECONDS}, must-revalidate"
"""Every file's ``Cache-Control``: one rule for the whole site."""

ATOM_TYPE = "application/atom+xml; charset=utf-8"
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format, version 0.0.4."""

# The type of a file by its extension, as hosts guess it from the extension too.
TYPES_BY_SUFFIX = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}
# Files whose type no host guesses from the extension: ``_headers`` names each of them.
TYPES_BY_PATH = {
    "feed.xml": ATOM_TYPE,
    "metrics.txt": PROMETHEUS_TYPE,
}
UNKNOWN_TYPE = "application/octet-stream"

HOST_FILES = frozenset({"_headers", "_redirects"})
"""Files a static host reads as its configuration and never serves."""

# The headers every file carries (``Content-Security-Policy`` aside, which depends on the
# page's style): any origin may read any file (the site is public, and nothing is read with
# credentials).
COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Access-Control-Allow-Origin", "*"),
)


def content_type(path: str) -> str:
    """The ``Content-Type`` of the site's file at ``path`` (``/``-separated, relative)."""
    path = path.lstrip("/")
    if path in TYPES_BY_PATH:
        return TYPES_BY_PATH[path]
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    suffix = name[dot:].lower() if dot > 0 else ""
    return TYPES_BY_SUFFIX.get(suffix, UNKNOWN_TYPE)


def object_headers(path: str) -> dict[str, str]:
    """What a file stored on its own (an object in a bucket) carries: its type and caching."""
    return {"Content-Type": content_type(path), "Cache-Control": CACHE_CONTROL}


def headers_file(csp: str) -> str:
    """``_headers`` (Netlify / Cloudflare Pages): one rule for every file, and the types of the
    files whose type a host cannot guess.

    Every other header is set once, under ``/*``: hosts join the values of every rule a path
    matches (``*, *`` is no valid ``Access-Control-Allow-Origin``), and they differ on what a
    path rule matches (Netlify's ``/packs/*`` also matches ``/packs``), so rules for parts of
    the site could set a header twice on one file. Browsers revalidate each time (a cheap 304
    while unchanged) and a shared cache serves a copy for at most ``EDGE_SECONDS``.
    """
    common = [
        *COMMON_HEADERS[:2],
        ("Content-Security-Policy", f"{csp}; frame-ancestors 'none'"),
        ("Cache-Control", CACHE_CONTROL),
        *COMMON_HEADERS[2:],
    ]
    lines = ["/*", *(f"  {name}: {value}" for name, value in common)]
    for path, kind in TYPES_BY_PATH.items():
        lines += [f"/{path}", f"  Content-Type: {kind}"]
    return "\n".join(lines) + "\n"
