// Calls to Kiln's native API (/v1), with the bearer token when one was given
// at sign-in. Errors come back as ApiError with the API's code and message.

const TOKEN_KEY = 'kiln_token';

export const authRequired = document.body.dataset.auth === 'on';

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(t) {
  try {
    sessionStorage.setItem(TOKEN_KEY, t);
  } catch { /* storage disabled: the cookie still signs the stream in */ }
}

export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* nothing kept */ }
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// toLogin sends the browser to the sign-in form, to come back here after.
export function toLogin() {
  clearToken();
  location.assign('/ui/login?next=' + encodeURIComponent(location.pathname));
}

export async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  const init = {method, headers, credentials: 'same-origin', cache: 'no-store'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `Kiln did not answer (${e.message}).`);
  }
  if (resp.status === 401 && authRequired) {
    toLogin();
    throw new ApiError(401, 'unauthorized', 'Signing in again…');
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, (data && data.code) || 'error', (data && data.message) || `${resp.status} ${resp.statusText}`);
  }
  return data;
}

export const path = {
  endpoints: () => '/v1/endpoints',
  endpoint: (name) => '/v1/endpoints/' + encodeURIComponent(name),
  instances: (name) => '/v1/endpoints/' + encodeURIComponent(name) + '/instances',
  history: (name) => '/v1/endpoints/' + encodeURIComponent(name) + '/history',
  stop: (name) => '/v1/endpoints/' + encodeURIComponent(name) + '/stop',
  rollback: (name) => '/v1/endpoints/' + encodeURIComponent(name) + '/rollback',
};
