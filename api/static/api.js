// Calls to the ledger API. Every error the API returns is {error: {code, message, field}};
// it becomes an ApiError with the same fields, so the page can say what went wrong and where.

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field ?? null;
  }
}

/** A JSON request to the API (same origin; the session is the HttpOnly cookie). */
export async function api(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network_error", "the service does not answer; is it running?", null);
  }
  if (response.status === 204) {
    return null;
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && typeof data === "object" ? data.error : null;
    if (error && typeof error.code === "string") {
      throw new ApiError(response.status, error.code, String(error.message ?? ""), error.field);
    }
    throw new ApiError(
      response.status,
      `http_${response.status}`,
      `the service answered HTTP ${response.status}`,
      null,
    );
  }
  return data;
}

/** Query string of the defined values of `params`. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
