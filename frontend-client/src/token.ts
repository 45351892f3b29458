// Access tokens for the socket and for HTTP: the caller's getToken(), with one refresh in
// flight at a time however many requests were refused at once (single flight).
import type { ClientOptions } from './types.js';

/** getToken() failed: reported as `auth_failed`, unlike a network failure. */
export class TokenError extends Error {}

export class TokenSource {
  private refreshing: Promise<string> | undefined;

  constructor(private readonly getToken: ClientOptions['getToken']) {}

  /** The current token; with `refresh`, a new one, shared by every caller asking meanwhile. */
  get(refresh: boolean): Promise<string> {
    if (!refresh) return this.getToken({ refresh: false }).catch(tokenFailure);
    if (this.refreshing === undefined) {
      const pending = this.getToken({ refresh: true })
        .catch(tokenFailure)
        .finally(() => {
          if (this.refreshing === pending) this.refreshing = undefined;
        });
      this.refreshing = pending;
    }
    return this.refreshing;
  }
}

function tokenFailure(error: unknown): never {
  throw new TokenError(`getToken failed: ${describeError(error)}`);
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
