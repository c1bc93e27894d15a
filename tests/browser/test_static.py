"""The console's files without a browser: everything is local (no CDN, no external URL), no
inline script, style or event handler (a strict CSP applies), every script is an ES module the
page loads, and the claim selector the console encodes is RevenueVault's."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from ledger.chain.artifacts import load_artifact

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


def test_modules_import_only_local_files() -> None:
    for module in STATIC.glob("*.js"):
        text = module.read_text()
        for target in re.findall(r"""from\s+["']([^"']+)["']""", text):
            assert target.startswith("./"), f"{module.name} imports {target}"
            assert (STATIC / target).is_file(), f"{module.name} imports a missing {target}"
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), module.name
        assert "eval(" not in text and "innerHTML" not in text, module.name


def test_claim_selector_is_revenue_vaults() -> None:
    abi: list[dict[str, Any]] = [dict(item) for item in load_artifact("RevenueVault").abi]
    (claim,) = [i for i in abi if i.get("type") == "function" and i.get("name") == "claim"]
    signature = "claim({})".format(",".join(i["type"] for i in claim["inputs"]))
    selector = "0x" + keccak(text=signature)[:4].hex()
    text = (STATIC / "wallet.js").read_text()
    assert f'export const CLAIM_SELECTOR = "{selector}";' in text
