/** What an API call answered: the HTTP status and the envelope's result and errors. */
export interface ApiAnswer<T> {
  status: number;
  result: T;
  errors: { code: string; message: string }[];
}

export type ApiCall = <T = unknown>(path: string, init?: { method?: string; json?: unknown }) => Promise<ApiAnswer<T>>;

/** Calls the daemon's API at `base()` (a function: the port is known once the daemon runs) with a bearer token. */
export function apiClient(base: () => string, token: string): ApiCall {
  return async <T>(path: string, init: { method?: string; json?: unknown } = {}) => {
    const res = await fetch(`${base()}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, ...(init.json !== undefined && { 'content-type': 'application/json' }) },
      ...(init.json !== undefined && { body: JSON.stringify(init.json) }),
    });
    const body = (await res.json()) as { result: T; errors: ApiAnswer<T>['errors'] };
    return { status: res.status, result: body.result, errors: body.errors };
  };
}
