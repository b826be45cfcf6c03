// Restart back-off for a crashing server: 1 s, 2 s, 4 s ... up to a cap, then give up.
// A server that stayed up for `stableMs` counts as healthy again and resets the count.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  maxAttempts: number;
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 30_000, maxAttempts: 6, stableMs: 60_000 };

export class Backoff {
  private attempts = 0;
  private startedAt: number | undefined;

  constructor(private readonly options: BackoffOptions = DEFAULT_BACKOFF,
              private readonly now: () => number = Date.now) {}

  /** Call when the server is up. */
  started(): void {
    this.startedAt = this.now();
  }

  /** Milliseconds to wait before the next restart, or undefined to give up. */
  nextDelay(): number | undefined {
    const { baseMs, maxMs, maxAttempts, stableMs } = this.options;
    if (this.startedAt !== undefined && this.now() - this.startedAt >= stableMs) this.attempts = 0;
    this.startedAt = undefined;
    if (this.attempts >= maxAttempts) return undefined;
    return Math.min(baseMs * 2 ** this.attempts++, maxMs);
  }

  get restarts(): number {
    return this.attempts;
  }
}
