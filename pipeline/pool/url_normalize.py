"""URL normalisation for URL dedup, page ids and domains (pure logic, no Beam import).

Only safe rules (RFC 3986 section 6.2.2 plus the usual crawler ones), so two captures of a page
normalise alike and no two pages merge. `doc_id` is blake2b-64 of the normalised URL; `url_domain`
drops one leading `www.`. The rules: docs/stages/pool.md.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import SplitResult, unquote, urlsplit

import idna


class InvalidUrl(ValueError):
    """A URL that is not an absolute http(s) URL with a valid host."""


ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# Query parameters that identify a campaign, click or session and never select content.
TRACKING_PARAMS = frozenset(
    {
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "fbclid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "wickedid",
    }
)
TRACKING_PREFIXES = ("utm_",)

# RFC 3986 character classes.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SUB_DELIMS = frozenset("!$&'()*+,;=")
# What may stay unescaped in a path (pchar and "/") and in a query (pchar, "/" and "?").
_PATH_SAFE = _UNRESERVED | _SUB_DELIMS | frozenset(":@/")
_QUERY_SAFE = _PATH_SAFE | frozenset("?")
_HEX = frozenset("0123456789abcdefABCDEF")
# A registered host name after IDNA: letters, digits, '-', '.', and '_' (not valid DNS, but real
# hosts such as `my_blog.example.org` exist and resolve through lenient resolvers).
_HOST_RE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
# C0 controls and space stripped at both ends; tab and newlines removed inside (as browsers do).
_STRIP_CHARS = "".join(chr(c) for c in range(0x21))


def normalize_url(url: str) -> str:
    """The normalised form of an absolute http(s) URL (rules in docs/stages/pool.md).

    Raises InvalidUrl for a URL with no scheme or host, a non-http(s) scheme, a bad port or a
    host that is not a valid (internationalised) host name or IP literal.
    """
    cleaned = url.strip(_STRIP_CHARS).replace("\t", "").replace("\r", "").replace("\n", "")
    try:
        parts = urlsplit(cleaned)
    except ValueError as exc:  # e.g. an unbalanced '[' in the host
        raise InvalidUrl(f"unparseable URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise InvalidUrl(f"not an absolute URL (no scheme or host): {url!r}")
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidUrl(f"scheme {scheme!r} is not http or https: {url!r}")
    netloc = _normalize_netloc(parts, scheme, url)
    path = _remove_dot_segments(_normalize_escapes(parts.path, _PATH_SAFE)) or "/"
    if not path.startswith("/"):
        path = "/" + path
    query = _normalize_query(parts.query)
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def url_domain(normalized_url: str) -> str:
    """The domain of a normalised URL: its host, without a leading `www.` and without the port.

    The paper's domain is "the pages sharing a base URL" (e.g. `mathoverflow.net`), so the unit
    is the host: `math.stackexchange.com` must stay apart from other `*.stackexchange.com` sites,
    which rules out registrable domains (eTLD+1). `www.example.org` and `example.org` are the
    same site under two names almost everywhere; keeping them apart would split one site's pool
    pages (and its collected fraction) in two, so exactly one leading `www.` label is dropped
    (not `www2.`, and not when nothing but a TLD would be left, as in `www.com`).
    """
    host = urlsplit(normalized_url).hostname or ""
    if host.startswith("www.") and "." in host[4:]:
        return host[4:]
    return host


def doc_id(normalized_url: str) -> str:
    """A stable 16-hex-character id: blake2b with an 8-byte digest of the normalised URL."""
    return hashlib.blake2b(normalized_url.encode("utf-8"), digest_size=8).hexdigest()


def _normalize_netloc(parts: SplitResult, scheme: str, url: str) -> str:
    # The user info is dropped: credentials must not reach the pool, and they never name a page.
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host_end = hostport.find("]")
        if host_end < 0:
            raise InvalidUrl(f"unterminated IPv6 literal in {url!r}")
        host = hostport[: host_end + 1].lower()
        port_text = hostport[host_end + 1 :].removeprefix(":")
    else:
        raw_host, _, port_text = hostport.partition(":")
        host = _normalize_host(raw_host, url)
    port = _parse_port(port_text, url)
    if port is None or port == DEFAULT_PORTS[scheme]:
        return host
    return f"{host}:{port}"


def _normalize_host(raw_host: str, url: str) -> str:
    host = unquote(raw_host).rstrip(".").lower()
    if not host:
        raise InvalidUrl(f"empty host in {url!r}")
    if not host.isascii():
        host = _idna_encode(host, url)
    if not _HOST_RE.match(host):
        raise InvalidUrl(f"invalid host {raw_host!r} in {url!r}")
    return host


def _idna_encode(host: str, url: str) -> str:
    try:
        # IDNA 2008 with the UTS 46 mapping, which is what browsers resolve.
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        pass
    try:
        # IDNA 2003 (Python's codec) still accepts symbols such as U+2603 in `xn--n3h.net`.
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidUrl(f"host {host!r} is not a valid internationalised name: {url!r}") from exc


def _parse_port(port_text: str, url: str) -> int | None:
    if not port_text:
        return None
    if not port_text.isdigit() or int(port_text) > 65535:
        raise InvalidUrl(f"invalid port {port_text!r} in {url!r}")
    return int(port_text)


def _normalize_escapes(component: str, safe: frozenset[str]) -> str:
    """Decode escapes of unreserved characters, upper-case the others, escape what must be."""
    out: list[str] = []
    i = 0
    n = len(component)
    while i < n:
        ch = component[i]
        if ch == "%" and i + 2 < n and component[i + 1] in _HEX and component[i + 2] in _HEX:
            decoded = chr(int(component[i + 1 : i + 3], 16))
            out.append(
                decoded if decoded in _UNRESERVED else "%" + component[i + 1 : i + 3].upper()
            )
            i += 3
            continue
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, on a path whose segments are already normalised."""
    if "." not in path:
        return path
    segments = path.split("/")
    output: list[str] = []
    for segment in segments:
        if segment == ".":
            continue
        if segment == "..":
            if len(output) > 1:
                output.pop()
            continue
        output.append(segment)
    # "/a/b/." and "/a/b/.." name a folder: keep the trailing slash.
    if segments[-1] in (".", ".."):
        output.append("")
    result = "/".join(output)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result


def _normalize_query(query: str) -> str:
    kept: list[str] = []
    for param in query.split("&"):
        if not param:
            continue
        name = unquote(param.partition("=")[0].replace("+", " ")).lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES):
            continue
        kept.append(_normalize_escapes(param, _QUERY_SAFE))
    return "&".join(kept)
