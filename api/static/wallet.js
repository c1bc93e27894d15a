// The browser wallet (EIP-1193 `window.ethereum`) and the few encodings the console needs:
// UTF-8 to hex for personal_sign, decimal units, and the calldata of RevenueVault.claim.

// `code` is the wallet's EIP-1193 number (4001: rejected by the user), or a string naming what
// the console found wrong with the wallet's answer.
export class WalletError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "WalletError";
    this.code = code;
  }

  static from(error) {
    if (error instanceof WalletError) {
      return error;
    }
    const code = typeof error?.code === "number" ? error.code : "wallet_error";
    if (code === 4001) {
      return new WalletError(code, "the request was rejected in the wallet");
    }
    if (code === 4100) {
      return new WalletError(code, "the wallet has not authorized this account");
    }
    const message = typeof error?.message === "string" && error.message ? error.message : "failed";
    return new WalletError(code, `the wallet says: ${message}`);
  }
}

/** The injected EIP-1193 provider. */
export function provider() {
  const ethereum = globalThis.ethereum;
  if (!ethereum || typeof ethereum.request !== "function") {
    throw new WalletError(
      "no_wallet",
      "no browser wallet found (window.ethereum); install or unlock one",
    );
  }
  return ethereum;
}

/** One EIP-1193 request; wallet errors become WalletError. */
export async function request(method, params = []) {
  try {
    return await provider().request({ method, params });
  } catch (error) {
    throw WalletError.from(error);
  }
}

/** Subscribe to a provider event if the wallet supports events. */
export function on(event, handler) {
  const ethereum = globalThis.ethereum;
  if (ethereum && typeof ethereum.on === "function") {
    ethereum.on(event, handler);
  }
}

/** The 0x hex of a string's UTF-8 bytes (personal_sign's first parameter). */
export function utf8ToHex(text) {
  const bytes = new TextEncoder().encode(text);
  let hex = "0x";
  for (const byte of bytes) {
    hex += byte.toString(16).padStart(2, "0");
  }
  return hex;
}

/** A decimal string ("1.25") as an integer of `decimals` decimal places (BigInt), or null. */
export function parseUnits(text, decimals) {
  const value = String(text).trim();
  const match = /^(\d{1,60})(?:\.(\d+))?$/.exec(value);
  if (!match) {
    return null;
  }
  const fraction = match[2] ?? "";
  if (fraction.length > decimals) {
    return null;
  }
  return BigInt(match[1] + fraction.padEnd(decimals, "0"));
}

/** An integer amount (BigInt or decimal string) with `decimals` places, without trailing zeros. */
export function formatUnits(amount, decimals) {
  const value = BigInt(amount);
  const sign = value < 0n ? "-" : "";
  const digits = (value < 0n ? -value : value).toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, "");
  return sign + whole + (fraction ? `.${fraction}` : "");
}

/** A decimal string or BigInt as a 0x quantity (eth_sendTransaction's value). */
export function quantity(amount) {
  return `0x${BigInt(amount).toString(16)}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait for a transaction's receipt (polling the wallet's node); throws if it reverted. */
export async function waitForReceipt(hash, { timeoutMs = 60000, intervalMs = 500 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const receipt = await request("eth_getTransactionReceipt", [hash]);
    if (receipt) {
      if (receipt.status !== "0x1") {
        throw new WalletError("tx_reverted", `transaction ${hash} reverted on chain`);
      }
      return receipt;
    }
    await sleep(intervalMs);
  }
  throw new WalletError(
    "tx_not_mined",
    `transaction ${hash} was not mined within ${timeoutMs / 1000} s`,
  );
}
