// The wallet console: connect an EIP-1193 wallet, sign in with Ethereum (EIP-4361), list own
// datasets, sign grants (EIP-712, eth_signTypedData_v4) for the service to relay, revoke them
// from the wallet, follow jobs, browse provenance as a graph, see and claim entitlements.
// Plain ES modules, no framework, no inline script: works under a strict Content-Security-Policy.

import { api, ApiError, query } from "./api.js";
import { renderLineage, short } from "./graph.js";
import {
  formatUnits,
  on,
  parseUnits,
  quantity,
  request,
  utf8ToHex,
  waitForReceipt,
  WalletError,
} from "./wallet.js";

const ETH = `0x${"00".repeat(20)}`;
const HASH = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const FINISHED_JOBS = new Set(["done", "failed"]);
const DAY = 86400;

const state = {
  account: null, // the wallet's selected account
  chainId: null, // the wallet's chain, as a number
  address: null, // the signed-in address (checksummed, from the API)
  datasets: [],
  received: [], // grants naming the signed-in address as grantee
  algorithms: [], // the catalog: {name, hash, description}
  jobs: new Map(), // job id -> last status
  jobTimer: null,
  busy: 0,
};

const $ = (id) => {
  const found = document.getElementById(id);
  if (!found) {
    throw new Error(`the page lacks #${id}`);
  }
  return found;
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ feedback

function setStatus(text) {
  $("status").textContent = text;
}

function clearInvalid() {
  for (const input of document.querySelectorAll("[aria-invalid='true']")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-errormessage");
  }
}

function clearError() {
  $("error").hidden = true;
  clearInvalid();
}

/** Show an error: an ApiError's code, message and field, a wallet's error, or a local one. */
function showError(error, fields = {}) {
  clearInvalid();
  let title = "Error";
  let code = "error";
  let message = String(error?.message ?? error);
  let field = null;
  if (error instanceof ApiError) {
    title = error.status >= 500 ? "The service failed" : "The service refused";
    code = error.code;
    field = error.field;
    if (error.status === 401 && error.code === "unauthenticated" && state.address) {
      // The session ended (expired, or signed out elsewhere): offer to sign in again.
      forget();
      title = "Signed out";
      message = "your session ended; sign in again";
    }
  } else if (error instanceof WalletError) {
    title = "Wallet";
    if (typeof error.code === "number") {
      code = error.code === 4001 ? "user_rejected" : `wallet_${error.code}`;
    } else {
      code = error.code;
    }
  } else if (error instanceof StepError) {
    title = "Not done yet";
    code = error.code;
  } else if (error instanceof InputError) {
    title = "Check the form";
    code = "invalid_input";
    field = error.field;
  } else {
    // Anything else is a bug of this page: say so without internals (details for developers
    // go to the browser's console only).
    console.error("console bug:", error);
    title = "The console failed";
    code = "console_error";
    message = "an unexpected error happened in the page; reload and retry";
  }
  $("error-title").textContent = title;
  $("error-message").textContent = message;
  $("error-code").textContent = code;
  $("error-field-wrap").hidden = !field;
  $("error-field").textContent = field ?? "";
  $("error").hidden = false;
  setStatus("");
  const input = field ? inputFor(field, fields) : null;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", "error-message");
    input.focus();
  }
}

function inputFor(field, fields) {
  const name = field.replace(/^typed_data\.message\./, "");
  const head = name.split(/[.[]/)[0];
  const id = fields[name] ?? fields[field] ?? fields[head];
  return id ? document.getElementById(id) : null;
}

/** A step that could not finish (e.g. the index lags behind the chain). */
class StepError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "StepError";
    this.code = code;
  }
}

class InputError extends Error {
  constructor(field, message) {
    super(message);
    this.name = "InputError";
    this.field = field;
  }
}

/** Run an action with the page marked busy and its errors shown. */
async function act(label, action, fields) {
  clearError();
  state.busy += 1;
  document.body.setAttribute("aria-busy", "true");
  setStatus(`${label}…`);
  try {
    await action();
  } catch (error) {
    showError(error, fields);
  } finally {
    state.busy -= 1;
    if (state.busy === 0) {
      document.body.removeAttribute("aria-busy");
    }
  }
}

function cell(row, content, className) {
  const td = document.createElement("td");
  if (content instanceof Node) {
    td.append(content);
  } else {
    td.textContent = content === null || content === undefined ? "" : String(content);
  }
  if (className) {
    td.className = className;
  }
  row.append(td);
  return td;
}

function code(text, title) {
  const el = document.createElement("code");
  el.textContent = short(text);
  el.title = title ?? text;
  return el;
}

function button(label, handler, className) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = label;
  if (className) {
    el.className = className;
  }
  el.addEventListener("click", handler);
  return el;
}

function same(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

function amount(value, token) {
  return same(token, ETH) ? `${formatUnits(value, 18)} ETH` : `${value} (smallest units)`;
}

function date(seconds) {
  const ms = Number(seconds) * 1000;
  // Dates past JavaScript's range (e.g. a uint64 "forever") cannot be shown as dates.
  if (!Number.isFinite(ms) || ms > 8.64e15) {
    return "no end";
  }
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

// ------------------------------------------------------------------ tabs

function selectTab(tab) {
  for (const other of document.querySelectorAll("[role='tab']")) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
}

function setUpTabs() {
  const tabs = [...document.querySelectorAll("[role='tab']")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(tab);
      let next = null;
      if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
      if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
      if (event.key === "Home") next = tabs[0];
      if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        selectTab(next);
        next.focus();
      }
    });
  }
}

// ------------------------------------------------------------------ wallet and session

function renderSession() {
  const connected = state.account !== null;
  const signedIn = state.address !== null;
  let text = "No wallet connected";
  if (signedIn) {
    text = `Signed in as ${state.address} (chain ${state.chainId})`;
  } else if (connected) {
    text = `Wallet ${state.account} on chain ${state.chainId}, not signed in`;
  }
  $("wallet-state").textContent = text;
  $("connect").hidden = connected;
  $("sign-in").hidden = !connected || signedIn;
  $("sign-out").hidden = !signedIn;
  $("datasets-empty").textContent = signedIn
    ? "You own no registered dataset."
    : "Sign in to see your datasets.";
}

async function connect() {
  const accounts = await request("eth_requestAccounts");
  if (!Array.isArray(accounts) || accounts.length === 0) {
    throw new WalletError("no_account", "the wallet gave no account");
  }
  state.account = accounts[0];
  state.chainId = Number.parseInt(await request("eth_chainId"), 16);
  try {
    const me = await api("GET", "/v1/auth/me");
    if (same(me.address, state.account)) {
      state.address = me.address;
    }
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      throw error;
    }
  }
  renderSession();
  setStatus(state.address ? "Session restored." : "Wallet connected. Sign in to continue.");
  if (state.address) {
    await loadSignedIn();
  }
}

async function signIn() {
  const nonce = await api("GET", `/v1/auth/nonce${query({ address: state.account })}`);
  if (nonce.chain_id !== state.chainId) {
    throw new WalletError(
      "wrong_chain",
      `the wallet is on chain ${state.chainId} but the service is on chain ${nonce.chain_id}; ` +
        "switch networks in the wallet",
    );
  }
  const signature = await request("personal_sign", [utf8ToHex(nonce.message), state.account]);
  const login = await api("POST", "/v1/auth/login", { message: nonce.message, signature });
  state.address = login.address;
  renderSession();
  setStatus(`Signed in as ${login.address}.`);
  await loadSignedIn();
}

function forget() {
  state.address = null;
  state.datasets = [];
  state.jobs.clear();
  for (const id of ["datasets-table", "grants-given", "grants-received", "jobs-table"]) {
    $(id).querySelector("tbody").replaceChildren();
  }
  $("grant-dataset").replaceChildren();
  $("run-grant").replaceChildren();
  state.received = [];
  $("job-result").hidden = true;
  $("entitlement").hidden = true;
  $("epochs-table").hidden = true;
  $("grant-result").hidden = true;
  renderSession();
}

async function signOut() {
  await api("POST", "/v1/auth/logout");
  forget();
  setStatus("Signed out.");
}

async function loadSignedIn() {
  // The catalog first: the grant tables name algorithms by it.
  await loadAlgorithms();
  await Promise.all([loadDatasets(), loadGrants(), loadJobs()]);
}

function requireSession() {
  if (!state.address) {
    throw new InputError(null, "sign in with your wallet first");
  }
}

// ------------------------------------------------------------------ datasets

async function loadDatasets() {
  requireSession();
  const page = await api("GET", `/v1/datasets${query({ owner: state.address, limit: 100 })}`);
  state.datasets = page.items;
  const body = $("datasets-table").querySelector("tbody");
  body.replaceChildren();
  const select = $("grant-dataset");
  const chosen = select.value;
  select.replaceChildren();
  for (const dataset of page.items) {
    const row = document.createElement("tr");
    row.dataset.datasetId = String(dataset.dataset_id);
    cell(row, dataset.dataset_id);
    cell(row, dataset.title ?? "(no metadata document)");
    cell(row, dataset.version);
    cell(row, dataset.record_count ?? "unknown");
    cell(row, dataset.license ?? "");
    const actions = cell(row, "");
    actions.append(
      button(
        "Grant access",
        () => {
          select.value = String(dataset.dataset_id);
          selectTab($("tab-grants"));
          $("grant-grantee").focus();
        },
        "secondary small",
      ),
    );
    body.append(row);
    const option = document.createElement("option");
    option.value = String(dataset.dataset_id);
    option.textContent = `${dataset.dataset_id}: ${dataset.title ?? "(no metadata document)"}`;
    select.append(option);
  }
  if (chosen) {
    select.value = chosen;
  }
  $("datasets-empty").hidden = page.items.length > 0;
}

async function loadAlgorithms() {
  // The catalog of algorithm templates: suggestions for the forms, names for the tables.
  let listed;
  try {
    listed = await api("GET", "/v1/algorithms");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return;
    }
    throw error;
  }
  state.algorithms = Array.isArray(listed) ? listed : (listed?.items ?? []);
  const list = $("algorithm-options");
  const options = [list.firstElementChild];
  for (const item of state.algorithms) {
    const option = document.createElement("option");
    option.value = item.name;
    option.textContent = item.description ?? item.name;
    options.push(option);
  }
  list.replaceChildren(...options);
}

/** A grant's algorithm as people name it: a catalog name, "any catalog algorithm", or a hash. */
function algorithmName(hash) {
  if (hash === `0x${"00".repeat(32)}`) {
    return "any catalog algorithm";
  }
  const found = state.algorithms.find((a) => same(a.hash, hash));
  return found ? found.name : short(hash);
}

// ------------------------------------------------------------------ grants

const GRANT_FIELDS = {
  datasetId: "grant-dataset",
  grantee: "grant-grantee",
  algorithm: "grant-algorithm",
  algorithmHash: "grant-algorithm",
  purpose: "grant-purpose",
  validFrom: "grant-days",
  validUntil: "grant-days",
  maxUses: "grant-uses",
  epsilonBudget: "grant-epsilon",
  pricePerUse: "grant-price",
};

async function chainTime() {
  const block = await request("eth_getBlockByNumber", ["latest", false]);
  return Number.parseInt(block.timestamp, 16);
}

async function createGrant() {
  requireSession();
  const datasetId = $("grant-dataset").value;
  if (!datasetId) {
    throw new InputError("datasetId", "choose one of your datasets");
  }
  const days = Number($("grant-days").value);
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new InputError("validUntil", "valid for: a whole number of days from 1 to 3650");
  }
  const uses = $("grant-uses").value.trim();
  if (!/^[1-9]\d{0,9}$/.test(uses)) {
    throw new InputError("maxUses", "maximum uses: a whole number of at least 1");
  }
  const epsilon = parseUnits($("grant-epsilon").value, 6);
  if (epsilon === null) {
    throw new InputError("epsilonBudget", "privacy budget: a decimal number, at most 6 decimals");
  }
  const price = parseUnits($("grant-price").value, 18);
  if (price === null) {
    throw new InputError(
      "pricePerUse",
      "price per use: a decimal number of ETH, at most 18 decimals",
    );
  }
  const now = await chainTime();
  const terms = {
    datasetId,
    grantee: $("grant-grantee").value.trim(),
    algorithm: $("grant-algorithm").value.trim(),
    purpose: $("grant-purpose").value.trim(),
    validFrom: String(now),
    validUntil: String(now + days * DAY),
    maxUses: uses,
    epsilonBudget: epsilon.toString(),
    pricePerUse: price.toString(),
  };
  setStatus("Preparing the grant's typed data…");
  const prepared = await api("POST", "/v1/grants/typed-data", terms);
  setStatus("Sign the grant in your wallet…");
  const signature = await request("eth_signTypedData_v4", [
    state.address,
    JSON.stringify(prepared.typed_data),
  ]);
  setStatus("Relaying the signed grant…");
  const relayed = await api("POST", "/v1/grants", { typed_data: prepared.typed_data, signature });
  const id = $("grant-result-id");
  id.textContent = relayed.grant_id;
  $("grant-result-tx").textContent = relayed.tx_hash;
  $("grant-result").hidden = false;
  setStatus(`Grant ${short(relayed.grant_id)} is on chain; waiting for the index…`);
  await untilIndexed(
    () => loadGrants(),
    () => findGrantRow(relayed.grant_id) !== null,
  );
  setStatus(`Grant ${short(relayed.grant_id)} is active.`);
}

/** Reload until `done()` (the index follows the chain within a second or two). */
async function untilIndexed(reload, done, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await reload();
    if (done()) {
      return;
    }
    if (Date.now() > deadline) {
      throw new StepError(
        "index_behind",
        "the transaction is on chain but the service's index has not caught up yet; refresh later",
      );
    }
    await sleep(500);
  }
}

function findGrantRow(grantId) {
  return document.querySelector(`#grants-given tr[data-grant-id='${grantId.toLowerCase()}']`);
}

async function loadGrants() {
  requireSession();
  const [given, received] = await Promise.all([
    api("GET", `/v1/grants${query({ role: "grantor", limit: 100 })}`),
    api("GET", `/v1/grants${query({ role: "grantee", limit: 100 })}`),
  ]);
  const givenBody = $("grants-given").querySelector("tbody");
  givenBody.replaceChildren();
  for (const grant of given.items) {
    const row = document.createElement("tr");
    row.dataset.grantId = grant.grant_id.toLowerCase();
    row.dataset.status = grant.status;
    cell(row, code(grant.grant_id));
    cell(row, grant.terms.datasetId);
    cell(row, code(grant.terms.grantee));
    cell(row, algorithmName(grant.terms.algorithmHash));
    cell(row, grant.status, `status ${grant.status}`);
    cell(row, `${grant.uses} / ${grant.terms.maxUses}`);
    cell(row, date(grant.terms.validUntil));
    const actions = cell(row, "");
    if (grant.status === "active") {
      const revoke = button(
        "Revoke",
        () => act("Revoking", () => revokeGrant(grant.grant_id)),
        "danger small",
      );
      revoke.setAttribute("aria-label", `Revoke grant ${short(grant.grant_id)}`);
      actions.append(revoke);
    }
    givenBody.append(row);
  }
  const receivedBody = $("grants-received").querySelector("tbody");
  receivedBody.replaceChildren();
  state.received = received.items;
  const select = $("run-grant");
  const chosen = select.value;
  select.replaceChildren();
  for (const grant of received.items) {
    const row = document.createElement("tr");
    row.dataset.grantId = grant.grant_id.toLowerCase();
    row.dataset.status = grant.status;
    cell(row, code(grant.grant_id));
    cell(row, grant.terms.datasetId);
    cell(row, code(grant.terms.grantor));
    cell(row, algorithmName(grant.terms.algorithmHash));
    cell(row, grant.status, `status ${grant.status}`);
    cell(row, `${grant.uses} / ${grant.terms.maxUses}`);
    cell(row, date(grant.terms.validUntil));
    const actions = cell(row, "");
    if (grant.status === "active") {
      const option = document.createElement("option");
      option.value = grant.grant_id;
      option.textContent =
        `${short(grant.grant_id)}: dataset ${grant.terms.datasetId}, ` +
        `${amount(grant.terms.pricePerUse, grant.terms.paymentToken)} per use`;
      select.append(option);
      const run = button(
        "Run a job",
        () => {
          select.value = grant.grant_id;
          fillRunAlgorithm();
          selectTab($("tab-jobs"));
          $("run-algorithm").focus();
        },
        "secondary small",
      );
      run.setAttribute("aria-label", `Run a job under grant ${short(grant.grant_id)}`);
      actions.append(run);
    }
    receivedBody.append(row);
  }
  if (chosen) {
    select.value = chosen;
  }
  if (!$("run-algorithm").value) {
    fillRunAlgorithm();
  }
}

/** The run form's algorithm: the catalog name of the chosen grant's algorithm, if it has one. */
function fillRunAlgorithm() {
  const grant = state.received.find((g) => g.grant_id === $("run-grant").value);
  const named = grant && state.algorithms.find((a) => same(a.hash, grant.terms.algorithmHash));
  if (named) {
    $("run-algorithm").value = named.name;
  }
}

/** Send a transaction the API prepared from the wallet and wait until it is mined. */
async function sendAndWait(tx, what) {
  if (tx.chainId !== undefined && Number(tx.chainId) !== state.chainId) {
    const rule = `the ${what} is for chain ${tx.chainId}; switch the wallet to it`;
    throw new WalletError("wrong_chain", rule);
  }
  setStatus(`Send the ${what} from your wallet…`);
  const hash = await request("eth_sendTransaction", [
    { from: tx.from ?? state.address, to: tx.to, data: tx.data, value: quantity(tx.value ?? "0") },
  ]);
  setStatus(`The ${what} is sent (${short(hash)}); waiting for it to be mined…`);
  await waitForReceipt(hash);
  return hash;
}

async function revokeGrant(grantId) {
  const prepared = await api("POST", `/v1/grants/${grantId}/revoke`);
  await sendAndWait(prepared.tx, "revocation");
  await untilIndexed(
    () => loadGrants(),
    () => findGrantRow(grantId)?.dataset.status === "revoked",
  );
  setStatus(`Grant ${short(grantId)} is revoked.`);
}

// ------------------------------------------------------------------ jobs

/** How many of the newest jobs the list shows (the API pages by at most 100). */
const JOBS_LISTED = 50;

/** The signed-in consumer's newest jobs from the API; followed until done or failed. */
async function loadJobs() {
  requireSession();
  const listed = await api("GET", `/v1/jobs${query({ limit: JOBS_LISTED })}`);
  for (const job of listed.items) {
    state.jobs.set(job.job_id.toLowerCase(), job);
  }
  renderJobs();
  scheduleJobPolling();
  if (listed.total > listed.items.length) {
    setStatus(`Showing your ${listed.items.length} newest jobs of ${listed.total}.`);
  }
}

function renderJobs() {
  const body = $("jobs-table").querySelector("tbody");
  body.replaceChildren();
  // Newest first, like the API's list (ISO 8601 UTC timestamps sort as text).
  const newer = (a, b) => (a > b ? -1 : a < b ? 1 : 0);
  const jobs = [...state.jobs].sort(([, a], [, b]) => newer(a.created_at ?? "", b.created_at ?? ""));
  for (const [jobId, job] of jobs) {
    const row = document.createElement("tr");
    row.dataset.jobId = jobId;
    row.dataset.status = job.status;
    cell(row, code(jobId));
    cell(row, job.status, `status ${job.status}`);
    cell(row, job.reason ? `${job.reason}${job.detail ? `: ${job.detail}` : ""}` : "");
    cell(row, job.updated_at ?? "");
    const actions = cell(row, "");
    if (job.result_available) {
      actions.append(
        button("Result", () => act("Loading the result", () => showResult(jobId)), "small"),
      );
    }
    actions.append(
      button(
        "Provenance",
        () => {
          $("provenance-key").value = jobId;
          selectTab($("tab-provenance"));
          act("Loading the lineage", () => showLineage(jobId));
        },
        "secondary small",
      ),
    );
    body.append(row);
  }
}

const RUN_FIELDS = {
  grants: "run-grant",
  datasets: "run-grant",
  algorithm: "run-algorithm",
  params: "run-params",
};

async function runJob() {
  requireSession();
  const grant = state.received.find((g) => g.grant_id === $("run-grant").value);
  if (!grant) {
    throw new InputError("grants", "grant: choose an active grant you received");
  }
  let params;
  try {
    params = JSON.parse($("run-params").value);
  } catch {
    params = null;
  }
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    throw new InputError("params", "parameters: a JSON object, e.g. {\"column\": \"age\"}");
  }
  const created = await api("POST", "/v1/jobs", {
    grants: [grant.terms],
    algorithm: $("run-algorithm").value.trim(),
    params,
    datasets: [{ datasetId: grant.terms.datasetId }],
  });
  // Each payment is its escrow transaction, after an ERC-20 approval if the token needs one.
  const escrows = [];
  for (const payment of created.payments) {
    let last = null;
    for (const tx of payment.transactions) {
      last = await sendAndWait(tx, `payment of ${amount(payment.amount, payment.token)}`);
    }
    escrows.push(last);
  }
  if (escrows.length > 0) {
    await api("POST", `/v1/jobs/${created.job_id}/payments`, { tx_hashes: escrows });
  }
  await followJob(created.job_id);
}

async function showResult(jobId) {
  const found = await api("GET", `/v1/jobs/${jobId}/result`);
  $("job-result-id").textContent = found.job_id;
  $("job-result-hash").textContent = found.result_hash;
  $("job-result-receipt").textContent = found.receipt_hash ?? "";
  $("job-result-tx").textContent = found.record_tx ?? "";
  $("job-result-json").textContent = JSON.stringify(found.result, null, 2);
  $("job-result").hidden = false;
  setStatus(`Result of job ${short(found.job_id)} shown.`);
}

async function followJob(jobId) {
  requireSession();
  if (!HASH.test(jobId)) {
    throw new InputError("jobId", "job id: 0x followed by 64 hex digits");
  }
  const key = jobId.toLowerCase();
  const job = await api("GET", `/v1/jobs/${key}`);
  state.jobs.set(key, job);
  renderJobs();
  setStatus(`Following job ${short(key)}: ${job.status}.`);
  scheduleJobPolling();
}

function scheduleJobPolling() {
  if (state.jobTimer !== null) {
    return;
  }
  let polling = false;
  state.jobTimer = setInterval(async () => {
    const open = [...state.jobs].filter(([, job]) => !FINISHED_JOBS.has(job.status));
    if (open.length === 0 || !state.address) {
      clearInterval(state.jobTimer);
      state.jobTimer = null;
      return;
    }
    if (polling) {
      return; // the previous round is still waiting for the service
    }
    polling = true;
    try {
      // One request for the newest jobs; only older open ones are asked for one by one.
      const listed = await api("GET", `/v1/jobs${query({ limit: JOBS_LISTED })}`);
      const fresh = new Set();
      for (const job of listed.items) {
        const key = job.job_id.toLowerCase();
        fresh.add(key);
        state.jobs.set(key, job);
      }
      for (const [jobId] of open) {
        if (!fresh.has(jobId)) {
          state.jobs.set(jobId, await api("GET", `/v1/jobs/${jobId}`));
        }
      }
      renderJobs();
    } catch (error) {
      showError(error);
    } finally {
      polling = false;
    }
  }, 2000);
}

// ------------------------------------------------------------------ provenance

function showFacts(node) {
  const list = $("provenance-details-list");
  list.replaceChildren();
  for (const [name, value] of Object.entries(node.facts)) {
    if (value === null || value === undefined) {
      continue;
    }
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    list.append(dt, dd);
  }
  $("provenance-details-title").textContent = node.label;
  $("provenance-details").hidden = false;
}

async function showLineage(key) {
  if (!HASH.test(key)) {
    throw new InputError("key", "a job id, receipt hash or result hash: 0x and 64 hex digits");
  }
  const lineage = await api("GET", `/v1/provenance/${key.toLowerCase()}/lineage`);
  const graph = renderLineage($("provenance-graph"), lineage, showFacts);
  const versions = graph.nodes.filter((n) => n.kind === "dataset-version").length;
  const grants = graph.nodes.filter((n) => n.kind === "grant").length;
  $("provenance-caption").textContent =
    `Job ${lineage.job_id}: ${versions} dataset version(s), ${grants} grant(s)` +
    (lineage.result_hash ? ", result hash known." : "; no result hash is known to this service.");
  $("provenance-figure").hidden = false;
  $("provenance-details").hidden = true;
  setStatus(`Lineage of job ${short(lineage.job_id)} shown.`);
}

// ------------------------------------------------------------------ entitlements

let entitlement = null;

async function loadEpochs(token) {
  const found = await api("GET", `/v1/settlement/epochs${query({ token })}`);
  const body = $("epochs-table").querySelector("tbody");
  body.replaceChildren();
  for (const epoch of found.epochs) {
    const row = document.createElement("tr");
    row.dataset.epoch = String(epoch.epoch);
    row.dataset.status = epoch.status;
    cell(row, epoch.epoch);
    cell(row, `${epoch.from_block}–${epoch.to_block}`);
    cell(row, epoch.status, `status ${epoch.status}`);
    cell(row, amount(epoch.total, found.token));
    cell(row, epoch.accounts);
    cell(row, code(epoch.root));
    body.append(row);
  }
  $("epochs-table").hidden = found.epochs.length === 0;
}

async function showEntitlement() {
  requireSession();
  const token = $("entitlement-token").value.trim();
  if (!ADDRESS.test(token)) {
    throw new InputError("token", "token: an address (0x and 40 hex digits); 0x000…000 is ETH");
  }
  await loadEpochs(token);
  try {
    entitlement = await api(
      "GET",
      `/v1/settlement/entitlements/${state.address}${query({ token })}`,
    );
  } catch (error) {
    if (error instanceof ApiError && error.code === "no_entitlement") {
      entitlement = null;
      $("entitlement").hidden = true;
      setStatus("No entitlement yet: no published epoch names this address for this token.");
      return;
    }
    throw error;
  }
  $("entitlement-epoch").textContent = String(entitlement.epoch);
  $("entitlement-cumulative").textContent = amount(entitlement.cumulative, entitlement.token);
  $("entitlement-claimed").textContent = amount(entitlement.claimed, entitlement.token);
  $("entitlement-claimable").textContent = amount(entitlement.claimable, entitlement.token);
  $("claim").disabled = BigInt(entitlement.claimable) === 0n;
  $("entitlement").hidden = false;
  setStatus(`Entitlement of epoch ${entitlement.epoch} shown.`);
}

/** The claim transaction the API built for the entitlement (RevenueVault.claim with its proof). */
function claimTransaction(found) {
  if (!found.tx || !ADDRESS.test(found.tx.to ?? "")) {
    throw new StepError("claim_unavailable", "the service returned no claim transaction");
  }
  return found.tx;
}

async function claim() {
  requireSession();
  if (!entitlement) {
    throw new InputError("token", "show the entitlement first");
  }
  const tx = claimTransaction(entitlement);
  const hash = await sendAndWait({ ...tx, from: state.address }, "claim");
  $("claim-tx").textContent = hash;
  $("claim-result").hidden = false;
  await showEntitlement();
  setStatus(`Claimed: ${$("entitlement-claimed").textContent} in total.`);
}

// ------------------------------------------------------------------ wiring

function wire() {
  setUpTabs();
  $("connect").addEventListener("click", () => act("Connecting the wallet", connect));
  $("sign-in").addEventListener("click", () => act("Signing in", signIn));
  $("sign-out").addEventListener("click", () => act("Signing out", signOut));
  $("error-close").addEventListener("click", clearError);
  $("datasets-refresh").addEventListener("click", () => act("Loading datasets", loadDatasets));
  $("grants-refresh").addEventListener("click", () => act("Loading grants", loadGrants));
  $("jobs-refresh").addEventListener("click", () => act("Loading jobs", loadJobs));
  $("grant-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("Creating the grant", createGrant, GRANT_FIELDS);
  });
  $("run-grant").addEventListener("change", fillRunAlgorithm);
  $("run-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("Creating the job", runJob, RUN_FIELDS);
  });
  $("job-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("Loading the job", () => followJob($("job-id").value.trim()), {
      jobId: "job-id",
      job_id: "job-id",
    });
  });
  $("provenance-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("Loading the lineage", () => showLineage($("provenance-key").value.trim()), {
      key: "provenance-key",
    });
  });
  $("entitlement-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("Loading the entitlement", showEntitlement, {
      token: "entitlement-token",
      account: "entitlement-token",
    });
  });
  $("claim").addEventListener("click", () => act("Claiming", claim));
  on("accountsChanged", (accounts) => {
    const next = Array.isArray(accounts) && accounts.length ? accounts[0] : null;
    if (!same(next, state.account)) {
      const hadSession = state.address !== null;
      state.account = next;
      forget();
      setStatus(next ? "The wallet switched accounts: sign in again." : "Wallet disconnected.");
      if (hadSession) {
        // The old account's session must not outlive the switch.
        api("POST", "/v1/auth/logout").catch(() => undefined);
      }
    }
  });
  on("chainChanged", (chainId) => {
    state.chainId = Number.parseInt(chainId, 16);
    renderSession();
  });
  renderSession();
  document.body.dataset.ready = "true";
}

wire();
