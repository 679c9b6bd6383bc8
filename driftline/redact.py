"""Keep secrets out of every text driftline writes: logs, printed errors, stored errors.

A :class:`Redactor` is built once at start-up from the settings (:func:`for_settings`):
every ``SecretStr`` value, every password inside a configured URL, and the path and
query of every secret URL (a Slack incoming webhook, a retraining webhook — the kind
that carries a token in its address). A URL is shown as ``scheme://host[:port]/…``.

>>> r = Redactor(["xoxb-SECRET123"], urls=["https://hooks.example.com/services/T0/B0/Zx9Tok?sig=abc123"])
>>> r("token xoxb-SECRET123 refused by https://hooks.example.com/services/T0/B0/Zx9Tok?sig=abc123")
'token *** refused by https://hooks.example.com/…'
>>> r('"POST /services/T0/B0/Zx9Tok?sig=abc123 HTTP/1.1" 500')
'"POST /… HTTP/1.1" 500'

Values shorter than :data:`MIN_LENGTH` characters are not treated as secrets (masking
every ``"ab"`` in a log line would hide more than it protects), and one that is a plain
lowercase word (a compose file's ``driftline`` password) is masked only where it stands as a
URL's password (``:driftline@``): masked everywhere, it would hide the program's own name.

>>> Redactor(["driftline"])("driftline: cannot reach postgresql://driftline:driftline@db:5432")
'driftline: cannot reach postgresql://driftline:***@db:5432'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"
MIN_LENGTH = 4
_SECRET_KEY = re.compile(r"password|secret|token", re.I)
_TOKENISH = re.compile(r"^[a-z_.-]+$")  # plain lowercase words in a path are not secrets


def url_display(url: str) -> str:
    """``scheme://host[:port]/…``: the part of a URL that is safe to show."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    return f"{parts.scheme}://{host}{port}/…"


def _variants(value: str) -> set[str]:
    return {v for v in (value, quote(value, safe=""), quote_plus(value), unquote(value)) if len(v) >= MIN_LENGTH}


class Redactor:
    """Replace secrets in a text; calling it with a text returns the safe text."""

    def __init__(self, secrets: Iterable[str] = (), urls: Iterable[str] = ()):
        self._replace: dict[str, str] = {}
        self._pattern: re.Pattern | None = None
        self.secrets: list[str] = []
        self.urls: list[str] = []
        self.add(secrets, urls)

    def clear(self) -> None:
        """Forget every secret (tests: one process loads many configurations)."""
        self._replace, self._pattern, self.secrets, self.urls = {}, None, [], []

    def add(self, secrets: Iterable[str] = (), urls: Iterable[str] = ()) -> None:
        secrets, urls = [s for s in secrets if s], [u for u in urls if u]
        self.secrets += secrets
        self.urls += urls
        for url in urls:
            self._add_url(url)
        for value in secrets:
            self._secret(value)
        if self._replace:
            alternatives = sorted(self._replace, key=len, reverse=True)  # the longest match wins
            self._pattern = re.compile("|".join(map(re.escape, alternatives)))

    def _add_url(self, url: str) -> None:
        try:
            parts = urlsplit(url)
        except ValueError:
            self._replace.setdefault(url, MASK)
            return
        for v in _variants(url):
            self._replace[v] = url_display(url)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(tail) >= MIN_LENGTH:
            self._replace.setdefault(tail, "/…")
        pieces = [parts.query, parts.password or ""]
        pieces += [pair.partition("=")[2] for pair in parts.query.split("&")]
        pieces += [seg for seg in parts.path.split("/") if len(seg) >= 8 and not _TOKENISH.match(seg)]
        for piece in pieces:
            self._secret(piece)

    def _secret(self, value: str) -> None:
        if _TOKENISH.match(value):  # a plain word: only as a URL's password
            self._replace.setdefault(f":{value}@", f":{MASK}@")
            return
        for v in _variants(value):
            self._replace.setdefault(v, MASK)

    def extend(self, other: Redactor) -> None:
        """Also mask everything ``other`` masks."""
        self.add(other.secrets, other.urls)

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: self._replace[m.group(0)], text)

    def __bool__(self) -> bool:
        return self._pattern is not None


def _walk(model, secrets: list[str], urls: list[str]) -> None:
    from pydantic import BaseModel, SecretStr
    values = model.__dict__.values() if isinstance(model, BaseModel) else model
    for value in values:
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            secrets.append(raw)
            if "://" in raw:
                urls.append(raw)
        elif isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                secrets.append(password)
        elif isinstance(value, (BaseModel, list, tuple)):
            _walk(value, secrets, urls)
        elif isinstance(value, dict):  # e.g. kafka.client: {"sasl.password": …}
            secrets += [str(v) for k, v in value.items() if _SECRET_KEY.search(str(k))]
            _walk(list(value.values()), secrets, urls)


def for_settings(settings) -> Redactor:
    """Every secret the settings hold: all ``SecretStr`` values (URLs among them shown by
    host only) and any password written into a URL (the store's, say)."""
    secrets: list[str] = []
    urls: list[str] = []
    _walk(settings, secrets, urls)
    return Redactor(secrets, urls)
