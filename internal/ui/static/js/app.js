// The dashboard's entry point: one shell page, whose path says what to show.
//   /ui/                  the overview of every endpoint
//   /ui/endpoints/NAME    one endpoint, live
import {h, replace} from './dom.js';
import {showOverview} from './overview.js';
import {showEndpoint} from './endpoint.js';

// window.kiln exposes what the page has seen, for people poking at it in the
// console and for tests: the snapshots of the live stream, the green share
// of each, and the chart instances.
window.kiln = {page: '', snapshots: [], greenShare: [], series: null, charts: {}, liveCharts: {}, errors: []};

// A content-security-policy violation is a bug in the page: keep it visible.
document.addEventListener('securitypolicyviolation', (ev) => {
  window.kiln.errors.push(`CSP: ${ev.violatedDirective} ${ev.blockedURI}`);
});
window.addEventListener('error', (ev) => {
  window.kiln.errors.push(String(ev.message));
});

const main = document.getElementById('main');
const live = document.getElementById('live');

// setLive shows in the top bar whether the page is up to date.
function setLive(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}

function route() {
  const p = location.pathname;
  const m = p.match(/^\/ui\/endpoints\/([^/]+)\/?$/);
  if (m) {
    window.kiln.page = 'endpoint';
    showEndpoint(main, decodeURIComponent(m[1]), setLive);
    return;
  }
  if (p === '/ui/' || p === '/ui') {
    window.kiln.page = 'overview';
    document.getElementById('nav-endpoints').setAttribute('aria-current', 'page');
    showOverview(main, setLive);
    return;
  }
  replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No dashboard page here. ', h('a', {href: '/ui/'}, 'See all endpoints.')));
}

route();
