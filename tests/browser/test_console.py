"""The web console end to end in headless Chromium: a wallet signs in with Ethereum, signs a
grant that the service relays (Active on chain), revokes it from the wallet (Revoked on chain),
a contributor claims exactly their entitlement, a consumer follows a job to its end and browses
its lineage as a graph, and errors show the API's code, message and field."""

from __future__ import annotations

import inspect
import json
import re
import time
from datetime import UTC, datetime
from decimal import Decimal

from eth_utils.crypto import keccak
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from playwright.sync_api import Browser, Route, expect
from web3.contract import Contract

from ledger.compute.catalog import catalog, entry
from ledger.rights.typed_data import grant_as_tuple
from ledger.settings import ANVIL_DEV_KEYS
from ledger.settlement import ETH
from ledger.store.models.jobs import JobStatus, PipelineJob
from tests.browser.conftest import Console, ConsoleWorld, OpenConsole, key_of

ACTIVE, REVOKED = 1, 2  # IAccessGrants.Status
STATUS = 4  # index of `status` in IAccessGrants.GrantState


def eth_text(wei: int) -> str:
    """How the console writes an ETH amount."""
    text = format(Decimal(wei) / Decimal(10**18), "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " ETH"


def sign_in(console: Console, address: str) -> None:
    page = console.page
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#wallet-state")).to_contain_text("not signed in")
    page.get_by_role("button", name="Sign in with Ethereum").click()
    expect(page.locator("#wallet-state")).to_have_text(f"Signed in as {address} (chain 31337)")


def grants_contract(console_world: ConsoleWorld) -> Contract:
    return console_world.world.ledger.grants


def test_owner_signs_in_grants_and_revokes(
    open_console: OpenConsole, console_world: ConsoleWorld
) -> None:
    world = console_world.world
    owner = world.owner
    console = open_console(owner.key)
    page = console.page
    console.shot("start")

    sign_in(console, owner.address)
    assert console.wallet.calls.count("personal_sign") == 1
    rows = page.locator("#datasets-table tbody tr")
    catalogued, document = console_world.catalogued
    expect(rows).to_have_count(len(world.datasets) + 1)
    shown = rows.evaluate_all("rows => rows.map(r => Number(r.dataset.datasetId))")
    assert sorted(shown) == sorted([*world.datasets.values(), catalogued])
    cells = page.locator(f"#datasets-table tr[data-dataset-id='{catalogued}'] td")
    expect(cells).to_have_text(
        [
            str(catalogued),
            document.title,
            "1",
            str(document.record_count),
            document.license,
            "Grant access",
        ]
    )
    # The forms suggest every catalog algorithm (GET /v1/algorithms).
    suggested = page.locator("#algorithm-options option").evaluate_all("os => os.map(o => o.value)")
    assert suggested == ["any", *catalog()]
    given = page.locator("#grants-given tbody tr")
    expect(given).to_have_count(len(world.grants))  # the world's two direct grants
    console.shot("signed-in")

    dataset_id = world.datasets["two"]
    row = page.locator(f"#datasets-table tr[data-dataset-id='{dataset_id}']")
    row.get_by_role("button", name="Grant access").click()
    expect(page.get_by_role("tab", name="Grants")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Dataset", exact=True)).to_have_value(str(dataset_id))
    page.get_by_label("Grantee address", exact=True).fill(world.consumer)
    page.locator("#grant-form").get_by_label("Algorithm", exact=True).fill("dp_mean")
    page.get_by_label("Purpose", exact=True).fill("research.oncology")
    page.get_by_label("Valid for (days)", exact=True).fill("10")
    page.get_by_label("Maximum uses", exact=True).fill("7")
    page.get_by_label("Privacy budget (epsilon)", exact=True).fill("1.5")
    page.get_by_label("Price per use (ETH)", exact=True).fill("0.02")
    console.shot("grant-form")
    page.get_by_role("button", name="Sign and submit grant").click()
    expect(page.locator("#grant-result")).to_be_visible(timeout=20_000)
    grant_id = page.locator("#grant-result-id").inner_text()
    tx_hash = page.locator("#grant-result-tx").inner_text()
    assert console.wallet.calls.count("eth_signTypedData_v4") == 1

    # On chain: the grant is Active, relayed with the terms typed into the form.
    grants = grants_contract(console_world)
    state = grants.functions.stateOf(bytes.fromhex(grant_id[2:])).call()
    assert state[STATUS] == ACTIVE
    relayed = console_world.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    assert relayed["to"] == grants.address
    function, arguments = grants.decode_function_input(relayed["input"])
    assert function.fn_name == "issueWithSig"
    terms = arguments["grant"]
    terms = terms if isinstance(terms, dict) else dict(zip(_GRANT_FIELDS, terms, strict=True))
    assert terms["datasetId"] == dataset_id
    assert terms["grantor"] == owner.address and terms["grantee"] == world.consumer
    assert "0x" + bytes(terms["algorithmHash"]).hex() == entry("dp_mean").hash
    assert bytes(terms["purpose"]) == keccak(text="research.oncology")
    assert terms["validUntil"] - terms["validFrom"] == 10 * 86_400
    assert terms["maxUses"] == 7 and terms["epsilonBudget"] == 1_500_000
    assert terms["pricePerUse"] == 2 * 10**16
    assert "0x" + grants.functions.grantId(terms).call().hex() == grant_id

    new_row = page.locator(f"#grants-given tr[data-grant-id='{grant_id}']")
    expect(new_row).to_have_attribute("data-status", "active")
    expect(new_row.locator("td").nth(3)).to_have_text("dp_mean")
    expect(given).to_have_count(len(world.grants) + 1)
    console.shot("granted")

    new_row.get_by_role("button", name=re.compile("^Revoke grant")).click()
    expect(new_row).to_have_attribute("data-status", "revoked", timeout=20_000)
    expect(new_row.get_by_role("button")).to_have_count(0)
    assert grants.functions.stateOf(bytes.fromhex(grant_id[2:])).call()[STATUS] == REVOKED
    (revocation,) = console.wallet.sent
    receipt = console_world.w3.eth.get_transaction_receipt(revocation)  # type: ignore[arg-type]
    assert receipt["status"] == 1 and receipt["from"] == owner.address
    assert receipt["to"] == grants.address
    # The world's other grants are untouched.
    for grant in world.grants.values():
        other = grants.functions.grantId(grant_as_tuple(grant)).call()
        assert grants.functions.stateOf(other).call()[STATUS] == ACTIVE
    console.shot("revoked")

    # A reload keeps the session (HttpOnly cookie): connecting restores it without signing.
    page.reload()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.locator("#wallet-state")).to_have_text(
        f"Signed in as {owner.address} (chain 31337)"
    )
    assert console.wallet.calls.count("personal_sign") == 1
    expect(page.locator("#status")).to_have_text("Session restored.")
    assert page.evaluate("document.cookie") == ""  # the session is not readable by scripts
    console.assert_clean()


_GRANT_FIELDS = (
    "datasetId",
    "grantor",
    "grantee",
    "algorithmHash",
    "purpose",
    "validFrom",
    "validUntil",
    "maxUses",
    "epsilonBudget",
    "paymentToken",
    "pricePerUse",
    "nonce",
    "deadline",
)


def test_contributor_claims_exactly_the_entitlement(
    open_console: OpenConsole, console_world: ConsoleWorld
) -> None:
    world = console_world.world
    alice = world.payees["alice"]
    due = console_world.due[alice]
    assert due > 0
    console = open_console(key_of("settle:alice"))
    page = console.page
    sign_in(console, alice)

    page.get_by_role("tab", name="Entitlements").click()
    page.get_by_role("button", name="Show entitlement").click()
    expect(page.locator("#entitlement-claimable")).to_have_text(eth_text(due))
    expect(page.locator("#entitlement-cumulative")).to_have_text(eth_text(due))
    expect(page.locator("#entitlement-claimed")).to_have_text("0 ETH")
    expect(page.locator("#entitlement-epoch")).to_have_text("1")
    (epoch,) = console_world.services.settlement.epochs(ETH)
    epochs = page.locator("#epochs-table tbody tr")
    expect(epochs).to_have_count(1)
    expect(epochs.first.locator("td")).to_have_text(
        [
            "1",
            f"{epoch.from_block}–{epoch.to_block}",
            "published",
            eth_text(epoch.total),
            str(epoch.accounts),
            f"{epoch.root[:8]}…{epoch.root[-4:]}",
        ]
    )
    assert epoch.total == sum(console_world.due.values())
    console.shot("entitlement")

    w3 = console_world.w3
    vault = world.ledger.vault
    before = w3.eth.get_balance(alice)
    page.get_by_role("button", name="Claim").click()
    expect(page.locator("#claim-result")).to_be_visible(timeout=20_000)
    expect(page.locator("#entitlement-claimable")).to_have_text("0 ETH")
    expect(page.locator("#entitlement-claimed")).to_have_text(eth_text(due))
    expect(page.get_by_role("button", name="Claim")).to_be_disabled()
    (claim_tx,) = console.wallet.sent
    assert page.locator("#claim-tx").inner_text() == claim_tx
    receipt = w3.eth.get_transaction_receipt(claim_tx)  # type: ignore[arg-type]
    assert receipt["status"] == 1 and receipt["to"] == vault.address
    # The wallet sent the service's claim transaction as is; the page encoded nothing itself.
    offered = page.evaluate(
        f"fetch('/v1/settlement/entitlements/{alice}').then(r => r.json()).then(b => b.tx)"
    )
    sent = w3.eth.get_transaction(claim_tx)  # type: ignore[arg-type]
    assert "0x" + bytes(sent["input"]).hex() == offered["data"]
    assert (sent["to"], sent["from"], sent["value"]) == (offered["to"], alice, 0)
    assert "eth_getTransactionByHash" not in console.wallet.calls
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(alice) - before + fee == due
    assert vault.functions.claimedOf(ETH, alice).call() == due
    console.shot("claimed")
    console.assert_clean()


def test_consumer_follows_a_job_and_browses_its_lineage(
    open_console: OpenConsole, console_world: ConsoleWorld
) -> None:
    world = console_world.world
    job_id, _ = world.jobs[1]  # job b: dataset one twice and dataset two once
    jobs = console_world.services.jobs
    now = datetime.now(UTC)
    jobs.create(
        PipelineJob(
            job_id=job_id,
            consumer=world.consumer,
            status=JobStatus.AWAITING_PAYMENT,
            request_json=json.dumps({"job": "created by the browser test"}),
            created_at=now,
            updated_at=now,
        )
    )
    console = open_console(ANVIL_DEV_KEYS[2])
    assert console.wallet.address == world.consumer
    page = console.page
    sign_in(console, world.consumer)
    for grant in world.grants.values():
        grant_id = "0x" + world.ledger.grants.functions.grantId(grant_as_tuple(grant)).call().hex()
        expect(page.locator(f"#grants-received tr[data-grant-id='{grant_id}']")).to_have_count(1)

    # The consumer's jobs are listed on sign-in, without asking for them by id.
    page.get_by_role("tab", name="Jobs").click()
    row = page.locator(f"#jobs-table tr[data-job-id='{job_id}']")
    expect(row).to_have_attribute("data-status", "awaiting_payment")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(1)
    page.get_by_label("Job id", exact=True).fill(job_id)
    page.get_by_role("button", name="Follow", exact=True).click()
    expect(page.locator("#status")).to_contain_text("Following job")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(1)  # listed once
    console.shot("job-awaiting-payment")

    # The pipeline moves on; the page polls and follows it to the end.
    steps = [JobStatus.AWAITING_PAYMENT, JobStatus.PAID, JobStatus.AUTHORIZED]
    for current, new in zip(steps, steps[1:], strict=False):
        jobs.advance(job_id, current, new)
    expect(row).to_have_attribute("data-status", "authorized", timeout=10_000)
    steps = [
        JobStatus.AUTHORIZED,
        JobStatus.COMPUTED,
        JobStatus.RECEIPTED,
        JobStatus.RECORDED,
        JobStatus.DONE,
    ]
    for current, new in zip(steps, steps[1:], strict=False):
        jobs.advance(job_id, current, new)
    expect(row).to_have_attribute("data-status", "done", timeout=10_000)
    console.shot("job-done")

    row.get_by_role("button", name="Provenance").click()
    expect(page.get_by_role("tab", name="Provenance")).to_have_attribute("aria-selected", "true")
    graph = page.locator("#provenance-graph svg")
    expect(graph).to_be_visible()
    nodes = graph.locator(".node")
    ids = set(nodes.evaluate_all("nodes => nodes.map(n => n.dataset.id)"))
    grants = world.ledger.grants
    expected_grants = {
        "grant:0x" + grants.functions.grantId(grant_as_tuple(world.grants[name])).call().hex()
        for name in ("one", "two")
    }
    expected = {
        f"version:{world.datasets['one']}:1",
        f"version:{world.datasets['two']}:1",
        *expected_grants,
        "algorithm",
        "job",
    }
    assert ids - {"result"} == expected
    edges = graph.locator("path.edge")
    pairs = set(map(tuple, edges.evaluate_all("es => es.map(e => [e.dataset.from, e.dataset.to])")))
    assert ("algorithm", "job") in pairs and len(pairs) == 5 + ("result" in ids)
    for grant in expected_grants:
        assert (grant, "algorithm") in pairs
    console.shot("lineage")

    graph.locator(".node[data-kind='job']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#provenance-details-title")).to_have_text("Job")
    expect(page.locator("#provenance-details-list")).to_contain_text(job_id)
    expect(page.locator("#provenance-details-list")).to_contain_text(world.consumer)
    grant_node = graph.locator(f".node[data-id='{sorted(expected_grants)[0]}']")
    grant_node.click()
    first = sorted(expected_grants)[0].removeprefix("grant:")
    expect(page.locator("#provenance-details-list")).to_contain_text(first)
    lineage = page.evaluate(f"fetch('/v1/provenance/{job_id}/lineage').then(r => r.json())")
    (paid,) = [g["price"] for g in lineage["grants"] if g["grant_id"] == first]
    assert int(paid) > 0
    expect(page.locator("#provenance-details-list")).to_contain_text(eth_text(int(paid)))
    console.shot("lineage-details")
    console.assert_clean()


def test_errors_show_the_api_code_message_and_field(
    open_console: OpenConsole, console_world: ConsoleWorld
) -> None:
    world = console_world.world
    owner = world.owner
    console = open_console(owner.key)
    page = console.page
    error = page.get_by_role("alert")

    # A rejected sign-in: the wallet's refusal is shown, no session is opened.
    console.wallet.reject_next.add("personal_sign")
    page.get_by_role("button", name="Connect wallet").click()
    page.get_by_role("button", name="Sign in with Ethereum").click()
    expect(error).to_be_visible()
    expect(page.locator("#error-code")).to_have_text("user_rejected")
    expect(page.locator("#wallet-state")).to_contain_text("not signed in")
    console.shot("sign-in-rejected")
    page.get_by_role("button", name="Dismiss").click()
    expect(error).to_be_hidden()

    page.get_by_role("button", name="Sign in with Ethereum").click()
    expect(page.locator("#wallet-state")).to_contain_text("Signed in as")

    # A grantee that is not an address: the API's 422 names the field, nothing is signed.
    page.get_by_role("tab", name="Grants").click()
    page.get_by_label("Grantee address", exact=True).fill("0x1234")
    page.get_by_role("button", name="Sign and submit grant").click()
    expect(page.locator("#error-code")).to_have_text("invalid_request")
    expect(page.locator("#error-field")).to_have_text("grantee")
    expect(page.locator("#error-message")).to_contain_text("grantee")
    grantee = page.get_by_label("Grantee address", exact=True)
    expect(grantee).to_have_attribute("aria-invalid", "true")
    expect(grantee).to_be_focused()
    assert "eth_signTypedData_v4" not in console.wallet.calls
    console.shot("grant-invalid-grantee")

    # A local check: a privacy budget with too many decimals never reaches the API.
    grantee.fill(world.consumer)
    page.get_by_label("Privacy budget (epsilon)", exact=True).fill("0.0000001")
    page.get_by_role("button", name="Sign and submit grant").click()
    expect(page.locator("#error-code")).to_have_text("invalid_input")
    epsilon = page.get_by_label("Privacy budget (epsilon)", exact=True)
    expect(epsilon).to_have_attribute("aria-invalid", "true")
    expect(grantee).not_to_have_attribute("aria-invalid", "true")

    # A grant the signer refuses to sign: nothing is relayed.
    epsilon.fill("1")
    console.wallet.reject_next.add("eth_signTypedData_v4")
    page.get_by_role("button", name="Sign and submit grant").click()
    expect(page.locator("#error-code")).to_have_text("user_rejected")
    expect(page.locator("#grant-result")).to_be_hidden()

    # Another account's job: the API's 404 or 403 code is shown as is.
    page.get_by_role("tab", name="Jobs").click()
    page.get_by_label("Job id", exact=True).fill("0x" + "ab" * 32)
    page.get_by_role("button", name="Follow", exact=True).click()
    expect(page.locator("#error-code")).to_have_text("job_not_found")
    expect(page.locator("#jobs-table tbody tr")).to_have_count(0)
    console.shot("job-not-found")

    # Lineage of an unknown job.
    page.get_by_role("tab", name="Provenance").click()
    page.get_by_label("Job id, receipt hash or result hash", exact=True).fill("0x" + "cd" * 32)
    page.get_by_role("button", name="Show lineage").click()
    expect(page.locator("#error-code")).to_have_text("lineage_not_found")
    expect(page.locator("#provenance-figure")).to_be_hidden()

    # The owner has no entitlement in the token of a random address.
    page.get_by_role("tab", name="Entitlements").click()
    page.get_by_label("Token", exact=True).fill("0x" + "11" * 20)
    page.get_by_role("button", name="Show entitlement").click()
    expect(page.locator("#status")).to_contain_text("No entitlement yet")

    # A session that ends on the server (expiry, another tab): the page offers to sign in again.
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "ledger_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert console_world.services.auth.close_session(cookie["value"])
    page.get_by_role("tab", name="Grants").click()
    page.locator("#grants-refresh").click()
    expect(page.locator("#error-code")).to_have_text("unauthenticated")
    expect(page.locator("#error-message")).to_have_text("your session ended; sign in again")
    expect(page.locator("#wallet-state")).to_contain_text("not signed in")
    expect(page.locator("#datasets-table tbody tr")).to_have_count(0)
    console.shot("session-ended")
    page.get_by_role("button", name="Sign in with Ethereum").click()
    expect(page.locator("#wallet-state")).to_contain_text("Signed in as")

    # Signing out ends the session on the server too.
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#wallet-state")).to_contain_text("not signed in")
    status = page.evaluate("fetch('/v1/auth/me').then(r => r.status)")
    assert status == 401
    console.shot("signed-out")
    console.assert_clean()


def test_markup_is_accessible_and_runs_under_a_strict_csp(
    open_console: OpenConsole, console_world: ConsoleWorld
) -> None:
    world = console_world.world
    console = open_console(world.owner.key)
    page = console.page

    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input, select, textarea')]
             .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
             .map(e => e.id)"""
    )
    assert unlabelled == []
    nameless = page.evaluate(
        """[...document.querySelectorAll('button')]
             .filter(b => !b.textContent.trim() && !b.getAttribute('aria-label'))
             .map(b => b.id)"""
    )
    assert nameless == []
    assert page.locator("[onclick], [onsubmit], [style], script:not([src])").count() == 0

    # Tabs follow the WAI-ARIA pattern: arrows, Home and End move the selection and the panel.
    tabs = page.get_by_role("tab")
    expect(tabs).to_have_count(5)
    tabs.first.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Grants")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab", name="Grants")).to_be_focused()
    expect(page.locator("#panel-grants")).to_be_visible()
    expect(page.locator("#panel-datasets")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.locator("#panel-entitlements")).to_be_visible()
    page.keyboard.press("Home")
    expect(page.locator("#panel-datasets")).to_be_visible()
    assert page.locator("[role='tabpanel']:not([hidden])").count() == 1

    # The CSP is in force: an injected inline script does not run.
    ran = page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__inline = 1'; document.body.append(s);
                   return window.__inline ?? null; }"""
    )
    assert ran is None
    assert any("Content Security Policy" in p for p in console.problems)
    console.problems.clear()

    # Switching accounts in the wallet ends the console's session state.
    sign_in(console, world.owner.address)
    expect(page.locator("#datasets-table tbody tr")).to_have_count(len(world.datasets) + 1)
    page.evaluate("a => window.ethereum.emit('accountsChanged', [a])", world.consumer)
    expect(page.locator("#wallet-state")).to_contain_text("not signed in")
    expect(page.locator("#status")).to_contain_text("sign in again")
    expect(page.locator("#datasets-table tbody tr")).to_have_count(0)
    deadline = time.monotonic() + 10
    while page.evaluate("fetch('/v1/auth/me').then(r => r.status)") != 401:
        assert time.monotonic() < deadline, "the old account's session is still open"
        page.wait_for_timeout(100)
    console.shot("account-switched")
    console.assert_clean()


def _default_url(function: object, name: str) -> str:
    return str(inspect.signature(function).parameters[name].default)  # type: ignore[arg-type]


#: Stand-ins for the documentation libraries FastAPI loads from its CDN (the machine is offline):
#: each records that it ran and what it was asked to show.
DOCS_STUBS = {
    _default_url(get_swagger_ui_html, "swagger_js_url"): (
        "window.SwaggerUIBundle = Object.assign("
        "(config) => { window.__docs = config.url; return {}; },"
        " { presets: { apis: {} }, SwaggerUIStandalonePreset: {} });"
    ),
    _default_url(get_redoc_html, "redoc_js_url"): (
        "window.__docs = document.querySelector('redoc').getAttribute('spec-url');"
    ),
}


def test_docs_pages_run_under_their_policy(browser: Browser, console_world: ConsoleWorld) -> None:
    """/docs and /redoc under the service's policy: the library from FastAPI's CDN and the
    page's own inline script run, nothing is refused, and an injected script does not run."""
    context = browser.new_context()
    problems: list[str] = []
    outside: list[str] = []

    def external(route: Route) -> None:
        url = route.request.url
        outside.append(url)
        if url in DOCS_STUBS:
            route.fulfill(body=DOCS_STUBS[url], content_type="application/javascript")
        else:  # the stylesheet and the favicon
            route.fulfill(status=404, body="")

    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), external)
    try:
        for path in ("/docs", "/redoc"):
            page = context.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: (
                    problems.append(message.text)
                    if "Refused" in message.text or "Content Security Policy" in message.text
                    else None
                ),
            )
            response = page.goto(console_world.url + path)
            assert response is not None and response.status == 200
            assert "script-src" in response.headers["content-security-policy"]
            page.wait_for_function("window.__docs !== undefined")
            assert page.evaluate("window.__docs") == "/openapi.json"
            assert problems == [], (path, problems)
            ran = page.evaluate(
                """() => { const s = document.createElement('script');
                           s.textContent = 'window.__inline = 1'; document.body.append(s);
                           return window.__inline ?? null; }"""
            )
            assert ran is None and any("Content Security Policy" in p for p in problems)
            problems.clear()
            page.close()
    finally:
        context.close()
    assert set(DOCS_STUBS) <= set(outside)
