// Calls to Kiln's native API (/v1). When Kiln asks for authentication, the
// browser's HttpOnly session cookie, set by signing in, authenticates them:
// the page itself holds no key and no token. Errors come back as ApiError
// with the API's code and message.

export const authRequired = document.body.dataset.auth === 'on';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// toLogin sends the browser to the sign-in form, to come back here after.
export function toLogin() {
  location.assign('/ui/login?next=' + encodeURIComponent(location.pathname));
}

export async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
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
