// How an API server's answer is read: one place, so tasks, services and artifacts classify an
// unreachable or throttling server the same way. The errors themselves: activities/errors.ts.

export function apiCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** An HTTP answer from the API server (as opposed to not reaching it at all). */
export function isApiAnswer(err: unknown): boolean {
  const code = apiCode(err);
  return code !== undefined && code > 0;
}

/** Answers that mean "not now" (throttled, overloaded, timed out): retried like an unreachable server. */
export function isTransient(err: unknown): boolean {
  const code = apiCode(err);
  return code === 429 || code === 500 || code === 502 || code === 503 || code === 504;
}

export function apiMessage(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  if (e?.body) {
    try {
      const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string });
      if (body.message) return body.message;
    } catch {
      /* not JSON */
    }
  }
  return e?.message ?? String(err);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
