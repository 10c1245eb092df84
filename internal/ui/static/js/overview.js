// The overview: every endpoint with its status, config, variants, instances
// and their health, and the deployment in progress, refreshed every second.
import {api, path} from './api.js';
import {h, replace, pct, badge, statusKind, instanceKind, deploymentTitle, clock, shareBar, longText, byOperator} from './dom.js';
import {shares} from './share.js';

const REFRESH_MS = 1000;

export function showOverview(main, setLive) {
  document.title = 'Endpoints · Kiln';
  const table = h('div', {id: 'overview'}, h('p', {class: 'loading'}, 'Loading endpoints…'));
  const problem = h('div', {id: 'overview-problem', role: 'alert'});
  replace(main,
    h('div', {class: 'title-row'}, h('h1', {}, 'Endpoints')),
    h('p', {class: 'muted'}, 'Every endpoint, what it runs and how healthy its instances are. An endpoint being updated shows how much of its traffic is on the new fleets.'),
    problem,
    table,
  );

  async function refresh() {
    try {
      const eps = (await api('GET', path.endpoints())) || [];
      eps.sort((a, b) => a.EndpointName.localeCompare(b.EndpointName));
      const insts = await Promise.all(eps.map((e) => api('GET', path.instances(e.EndpointName)).catch(() => null)));
      replace(table, render(eps, insts));
      replace(problem);
      setLive('live', `Updated ${clock(new Date().toISOString())}`);
    } catch (e) {
      replace(problem, h('p', {class: 'notice notice-bad'}, `Could not read the endpoints: ${e.message}`));
      setLive('down', 'Not updating');
    }
    setTimeout(refresh, REFRESH_MS);
  }
  refresh();
}

function render(eps, insts) {
  if (eps.length === 0) {
    return h('div', {class: 'panel'},
      h('p', {}, 'No endpoints yet.'),
      h('p', {class: 'muted'}, 'Create one from a file with ', h('code', {}, 'kiln apply -f kiln.yaml'), ', or try ', h('code', {}, 'kiln demo'), '.'));
  }
  return h('div', {class: 'table-wrap'},
    h('table', {},
      h('caption', {class: 'sr-only'}, 'Endpoints'),
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Endpoint'),
        h('th', {scope: 'col'}, 'Status'),
        h('th', {scope: 'col'}, 'Config'),
        h('th', {scope: 'col'}, 'Variants'),
        h('th', {scope: 'col'}, 'Instances'),
        h('th', {scope: 'col'}, 'Deployment'))),
      h('tbody', {}, eps.map((e, i) => row(e, insts[i])))));
}

function row(ep, insts) {
  return h('tr', {'data-endpoint': ep.EndpointName},
    h('th', {scope: 'row'}, h('a', {class: 'endpoint-link', href: '/ui/endpoints/' + encodeURIComponent(ep.EndpointName), 'data-key': 'ep-' + ep.EndpointName}, ep.EndpointName)),
    h('td', {}, badge(ep.EndpointStatus, statusKind(ep.EndpointStatus)), lastOutcome(ep)),
    h('td', {}, h('span', {class: 'name'}, ep.EndpointConfigName)),
    h('td', {}, variants(ep)),
    h('td', {}, instances(insts)),
    h('td', {}, deployment(ep)));
}

// lastOutcome says how the last update ended, unless the next one runs.
function lastOutcome(ep) {
  if (!ep.FailureReason || (ep.Deployment && ep.Deployment.Kind !== 'Create')) return null;
  if (byOperator(ep.FailureReason)) return h('p', {class: 'small muted'}, 'Last update rolled back by an operator.');
  return h('p', {class: 'small muted'}, 'Last update failed: ', longText(ep.FailureReason));
}

// variants lists each variant with its weight and instances. During a
// deployment the old and the new fleets run side by side, so a variant runs
// more instances than it asks for: say so in words rather than "4/2".
function variants(ep) {
  const vs = ep.ProductionVariants || [];
  if (vs.length === 0) return h('span', {class: 'muted'}, '–');
  return h('ul', {class: 'chips'}, vs.map((v) => {
    const cur = v.CurrentInstanceCount, want = v.DesiredInstanceCount;
    let count = `${want} instance${want === 1 ? '' : 's'}`;
    let title = `${cur} running, ${want} desired`;
    if (cur !== want) {
      count = cur > want ? `${cur} running (${want} desired + new fleet)` : `${cur} of ${want} instances running`;
      if (cur > want) title = `${cur} instances run during the update: the old fleet's and the new fleet's; ${want} will remain`;
    }
    return h('li', {class: 'small', 'data-variant': v.VariantName, title}, h('span', {class: 'name'}, v.VariantName), ` · weight ${v.CurrentWeight} · ${count}`);
  }));
}

function instances(insts) {
  if (insts === null) return h('span', {class: 'muted'}, 'unknown');
  if (insts.length === 0) return h('span', {class: 'muted'}, 'none');
  insts.sort((a, b) => a.ID.localeCompare(b.ID));
  const healthy = insts.filter((i) => i.State === 'Healthy').length;
  return h('div', {},
    h('span', {class: 'small'}, `${healthy} of ${insts.length} healthy`),
    h('ul', {class: 'chips', 'aria-label': 'Instances'}, insts.map((i) =>
      h('li', {class: `chip chip-${instanceKind(i.State)}`, title: `${i.ID} · ${i.EndpointConfigName} · ${i.Addr || 'no address'}${i.LastError ? ' · ' + i.LastError : ''}`},
        `${i.FleetID}/${i.Ordinal} ${i.State}${i.Restarts ? ` (${i.Restarts} restarts)` : ''}`))));
}

function deployment(ep) {
  const d = ep.Deployment;
  if (!d) return h('span', {class: 'muted'}, 'none');
  const s = shares(ep);
  const parts = [
    h('div', {}, h('strong', {}, deploymentTitle(d))),
    h('div', {class: 'small'}, `${d.Phase}${d.Step ? `, step ${d.Step}` : ''}`),
  ];
  if (d.Kind !== 'Create') {
    parts.push(
      h('div', {class: 'small', 'data-green-share': s.green}, `${pct(s.green)} on green`),
      shareBar(s.blue, s.green));
  }
  if (d.RollbackReason) parts.push(h('div', {class: 'small'}, badge('Rolling back', 'warn'), ' ', d.RollbackReason));
  return h('div', {}, parts);
}
