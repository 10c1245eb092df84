// Small DOM and formatting helpers. Everything shown comes from the API, so
// text goes in through textContent, never as HTML.

// h builds an element: h('a', {href: '/ui/', class: 'x'}, 'text', child, ...).
// Attributes starting with "on" are event listeners; null, undefined and
// false children and attributes are skipped; arrays of children are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'text') {
      el.textContent = v;
    } else if (k === 'hidden' || k === 'disabled') {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// replace swaps a container's content, keeping keyboard focus on the element
// with the same data-key if the focus was inside, so that a refresh every
// second does not throw a keyboard user back to the top.
export function replace(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren();
  append(container, children);
  if (key !== undefined) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

export function pct(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const p = v * 100;
  const r = Math.round(p * 10) / 10;
  return (Number.isInteger(r) ? r.toFixed(0) : r.toFixed(1)) + '%';
}

export function num(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

const timeFmt = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'medium'});

// isZero reports whether a JSON time is Go's zero time.
export function isZero(iso) {
  return !iso || iso.startsWith('0001-01-01');
}

export function clock(iso) {
  return isZero(iso) ? '–' : timeFmt.format(new Date(iso));
}

// when is a <time> element showing the time of day, with the full date on hover.
export function when(iso) {
  if (isZero(iso)) return h('span', {class: 'muted'}, '–');
  const d = new Date(iso);
  return h('time', {datetime: d.toISOString(), title: dateTimeFmt.format(d)}, timeFmt.format(d));
}

export function badge(text, kind) {
  return h('span', {class: `badge badge-${kind}`}, text);
}

// statusKind maps an endpoint status to a badge colour.
export function statusKind(status) {
  switch (status) {
    case 'InService': return 'ok';
    case 'Creating': case 'Updating': case 'SystemUpdating': return 'info';
    case 'RollingBack': return 'warn';
    case 'Failed': case 'UpdateRollbackFailed': case 'OutOfService': return 'bad';
    default: return 'muted';
  }
}

export function alarmKind(state) {
  switch (state) {
    case 'OK': return 'ok';
    case 'ALARM': return 'bad';
    default: return 'warn';
  }
}

export function instanceKind(state) {
  switch (state) {
    case 'Healthy': return 'ok';
    case 'Starting': case 'Draining': return 'warn';
    case 'Unhealthy': case 'Failed': return 'bad';
    default: return 'muted';
  }
}

const opSymbols = {
  GreaterThanThreshold: '>',
  GreaterThanOrEqualToThreshold: '≥',
  LessThanThreshold: '<',
  LessThanOrEqualToThreshold: '≤',
};

// condition reads an alarm as a sentence: "Sum of Invocation5XXErrors > 0 for 1 of 1 × 1 s".
export function condition(a) {
  if (a.Source === 'judge') return 'statistical judge of the new fleet against the old';
  if (a.Source === 'composite') return `composite: ${a.AlarmRule}`;
  const metric = a.Source === 'prometheus' ? 'PromQL query' : a.MetricName;
  return `${a.Statistic} of ${metric} ${opSymbols[a.ComparisonOperator] || a.ComparisonOperator} ${a.Threshold} ` +
    `for ${a.DatapointsToAlarm} of ${a.EvaluationPeriods} × ${a.Period} s`;
}

// deploymentTitle names a deployment the way people say it.
export function deploymentTitle(d) {
  const tr = d.DeploymentConfig && d.DeploymentConfig.BlueGreenUpdatePolicy && d.DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration;
  let how = d.Kind;
  if (d.Kind === 'BlueGreen' && tr) {
    const size = tr.CanarySize || tr.LinearStepSize;
    const sz = size ? (size.Type === 'CAPACITY_PERCENT' ? `${size.Value}%` : `${size.Value} instance${size.Value === 1 ? '' : 's'}`) : '';
    how = {ALL_AT_ONCE: 'All at once', CANARY: `Canary ${sz}`, LINEAR: `Linear ${sz} steps`}[tr.Type] || tr.Type;
  } else if (d.Kind === 'Rolling') {
    how = 'Rolling update';
  } else if (d.Kind === 'Create') {
    how = 'Creating';
  } else if (d.Kind === 'Weights') {
    how = 'Weights and capacities';
  }
  return `${how} to ${d.EndpointConfigName}`;
}

// shareBar is a bar split between blue and green, with a text alternative.
export function shareBar(blue, green, large) {
  const b = h('span', {class: 'blue'});
  const g = h('span', {class: 'green'});
  b.style.width = `${Math.max(0, Math.min(1, blue)) * 100}%`;
  g.style.width = `${Math.max(0, Math.min(1, green)) * 100}%`;
  return h('div', {class: large ? 'sharebar sharebar-lg' : 'sharebar', role: 'img', 'aria-label': `${pct(blue)} of traffic on blue, ${pct(green)} on green`}, b, g);
}

// LONG_TEXT is how many characters of a reason show before "Show all".
const LONG_TEXT = 160;

// longText shows a reason in full when it is short, and otherwise its start
// cut at a word, with the whole text a click away (a <details>).
export function longText(text, attrs = {}) {
  const s = String(text || '');
  if (s.length <= LONG_TEXT) return h('span', {class: 'reason', ...attrs}, s);
  let cut = s.lastIndexOf(' ', LONG_TEXT);
  if (cut < LONG_TEXT / 2) cut = LONG_TEXT;
  return h('details', {class: 'reason reason-long', ...attrs},
    h('summary', {}, h('span', {class: 'reason-start'}, s.slice(0, cut) + '…'), ' ', h('span', {class: 'reason-more'}, 'Show all')),
    h('p', {class: 'reason-full'}, s));
}

// byOperator tells an update an operator stopped or rolled back (kiln stop,
// kiln rollback, the page's buttons) from one that failed.
export function byOperator(reason) {
  return /\bby operator\.?$/.test(String(reason || ''));
}

// outcome is the notice of how the endpoint's last update ended, or null:
// none while the next deployment runs (the timeline keeps the story), a
// neutral one when an operator rolled it back, and a failure otherwise.
export function outcome(ep) {
  const reason = ep.FailureReason;
  if (!reason) return null;
  const d = ep.Deployment;
  if (d && d.Kind !== 'Create') return null;
  if (byOperator(reason)) {
    const what = /stopped by operator/.test(reason) ? 'stopped by an operator and rolled back' : 'rolled back by an operator';
    return h('div', {class: 'notice notice-info', id: 'ep-outcome', 'data-kind': 'operator'},
      h('strong', {}, `Last update ${what}.`), ` The endpoint runs ${ep.EndpointConfigName} again.`);
  }
  return h('div', {class: 'notice notice-bad', id: 'ep-outcome', 'data-kind': 'failed'},
    h('strong', {}, 'Last update failed: '), longText(reason, {id: 'ep-failure-reason'}));
}
