// The overview: every endpoint with its status, config, variants, instances
// and their health, and the deployment in progress, refreshed every second.
import {api, path} from './api.js';
import {h, replace, pct, badge, statusKind, instanceKind, deploymentTitle, clock, shareBar} from './dom.js';
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
    h('td', {}, badge(ep.EndpointStatus, statusKind(ep.EndpointStatus)),
      ep.FailureReason ? h('p', {class: 'small muted'}, ep.FailureReason) : null),
    h('td', {}, ep.EndpointConfigName),
    h('td', {}, variants(ep)),
    h('td', {}, instances(insts)),
    h('td', {}, deployment(ep)));
}

function variants(ep) {
  const vs = ep.ProductionVariants || [];
  if (vs.length === 0) return h('span', {class: 'muted'}, '–');
  return h('ul', {class: 'chips'}, vs.map((v) =>
    h('li', {class: 'small'}, `${v.VariantName} · weight ${v.CurrentWeight} · ${v.CurrentInstanceCount}/${v.DesiredInstanceCount} instances`)));
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
