"""The console's files without a browser: everything is local (no CDN, no external URL), no
inline script, style or event handler (a strict CSP applies), every script is an ES module the
page loads, and the page builds no contract calldata of its own."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from api.security import CONSOLE_CSP

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


def test_the_page_is_local_and_csp_clean() -> None:
    page = _Page()
    page.feed((STATIC / "index.html").read_text())
    assert not page.inline_script
    for tag, attrs in page.tags:
        assert tag != "style", "no inline style element"
        assert "style" not in attrs, f"no style attribute ({tag})"
        handlers = [a for a in attrs if a.startswith("on")]
        assert handlers == [], f"no inline event handler ({tag}: {handlers})"
        for key in ("src", "href"):
            value = attrs.get(key)
            if value is not None and not value.startswith("#"):
                assert not re.match(r"^[a-z]+:|^//", value), f"{tag} {key}={value} is not local"
                assert (STATIC / value).is_file(), f"{tag} {key}={value} is missing"
    (script,) = [attrs for tag, attrs in page.tags if tag == "script"]
    assert script == {"type": "module", "src": "app.js"}
    # The page carries its own CSP, before any script or style, for servers that send none.
    position = {tag: i for i, (tag, _) in reversed(list(enumerate(page.tags)))}
    (csp_index, csp) = next(
        (i, attrs)
        for i, (tag, attrs) in enumerate(page.tags)
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp_index < position["link"] and csp_index < position["script"]
    policy = dict(
        (d.split(" ", 1) + [""])[:2] for d in str(csp["content"]).split("; ") if d.strip()
    )
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    # The same policy as the service sends in its header (a meta policy cannot name
    # frame-ancestors, so the header adds it).
    header = dict((d.split(" ", 1) + [""])[:2] for d in CONSOLE_CSP.split("; "))
    assert policy == {k: v for k, v in header.items() if k != "frame-ancestors"}


def test_modules_import_only_local_files() -> None:
    for module in STATIC.glob("*.js"):
        text = module.read_text()
        for target in re.findall(r"""from\s+["']([^"']+)["']""", text):
            assert target.startswith("./"), f"{module.name} imports {target}"
            assert (STATIC / target).is_file(), f"{module.name} imports a missing {target}"
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), module.name
        assert "eval(" not in text and "innerHTML" not in text, module.name


def test_the_console_builds_no_calldata() -> None:
    """Transactions come from the API ready to send (grants' revocations, escrows, claims): the
    page encodes no contract call of its own."""
    for module in STATIC.glob("*.js"):
        text = module.read_text()
        assert not re.search(r"SELECTOR|encode(?!URI)[A-Z]\w*\(|keccak", text), module.name
