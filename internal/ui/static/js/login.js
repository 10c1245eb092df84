// The sign-in form: the token is checked by POST /ui/login, which sets the
// HttpOnly cookie the live stream uses; the page keeps its own copy in
// sessionStorage for the Authorization header of its /v1 calls. Without
// this script the form still works as a plain form post.
import {setToken} from './api.js';

const form = document.getElementById('login-form');
const input = document.getElementById('token');
const error = document.getElementById('login-error');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const tok = input.value.trim();
  const body = new URLSearchParams({token: tok, next: form.elements.next.value});
  let resp;
  try {
    resp = await fetch('/ui/login', {method: 'POST', body, headers: {Accept: 'application/json'}, credentials: 'same-origin'});
  } catch (e) {
    error.textContent = `Kiln did not answer (${e.message}).`;
    error.hidden = false;
    return;
  }
  if (resp.status === 204) {
    setToken(tok);
    location.replace(form.elements.next.value || '/ui/');
    return;
  }
  let msg = 'That token is not valid for this Kiln.';
  try {
    msg = (await resp.json()).message || msg;
  } catch { /* keep the default */ }
  error.textContent = msg;
  error.hidden = false;
  input.select();
  input.focus();
});
