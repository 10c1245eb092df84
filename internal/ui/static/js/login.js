// The sign-in form: POST /ui/login checks an access key ID with its secret
// access key, or a token from `kiln token`, and answers with an HttpOnly
// session cookie that expires; the page keeps nothing itself. Without this
// script the form still works as a plain form post.
const form = document.getElementById('login-form');
const error = document.getElementById('login-error');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const f = form.elements;
  const body = new URLSearchParams({
    access_key_id: f.access_key_id.value.trim(),
    secret_access_key: f.secret_access_key.value.trim(),
    token: f.token.value.trim(),
    next: f.next.value,
  });
  let resp;
  try {
    resp = await fetch('/ui/login', {method: 'POST', body, headers: {Accept: 'application/json'}, credentials: 'same-origin'});
  } catch (e) {
    error.textContent = `Kiln did not answer (${e.message}).`;
    error.hidden = false;
    return;
  }
  // The secret leaves the page's memory with the form.
  f.secret_access_key.value = '';
  f.token.value = '';
  if (resp.status === 204) {
    location.replace(f.next.value || '/ui/');
    return;
  }
  let msg = 'That access key or token is not valid for this Kiln.';
  try {
    msg = (await resp.json()).message || msg;
  } catch { /* keep the default */ }
  error.textContent = msg;
  error.hidden = false;
  f.access_key_id.focus();
});
