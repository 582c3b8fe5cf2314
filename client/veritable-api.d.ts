// Types of veritable-api.js: writes sent once (Idempotency-Key, retried on a lost answer).

export interface WriteOptions {
  method?: "POST" | "PUT" | "PATCH" | "DELETE";
  /** Elsewhere than in a browser, e.g. `{ authorization: "Bearer <token>" }`. */
  headers?: Record<string, string>;
  /** The Idempotency-Key; a fresh UUID when not given. */
  key?: string;
}

export interface WriteResult<T = unknown> {
  status: number;
  /** The answer's JSON: the resource, or `{ error: { code, message, field } }`. */
  data: T | null;
  /** Answered from an earlier attempt with the same key. */
  replayed: boolean;
  key: string;
}

/** Rejects only when every attempt failed on the network. */
export function write<T = unknown>(url: string, body?: unknown, options?: WriteOptions): Promise<WriteResult<T>>;
