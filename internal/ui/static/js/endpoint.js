// One endpoint, live: its deployment with the buttons to stop or roll it
// back, the traffic on old and new fleets, its alarms, charts of the last
// minutes, its instances and the deployment timeline. The live stream
// (GET /ui/api/events) sends a snapshot every second; the page keeps them to
// draw the charts.
import {api, path, ApiError} from './api.js';
import {h, replace, pct, num, badge, when, clock, statusKind, alarmKind, instanceKind, condition, deploymentTitle, shareBar, isZero, longText, outcome, byOperator} from './dom.js';
import {LiveChart, fleetColor, STATE_COLORS} from './charts.js';

// How many snapshots the page keeps: an hour at one a second.
const MAX_SNAPSHOTS = 3600;
const INSTANCES_MS = 2000;
// The shortest span a chart shows, in seconds.
const MIN_SPAN = 60;
const WINDOWS = [[60, '1 minute'], [300, '5 minutes'], [900, '15 minutes'], [1800, '30 minutes'], [3600, '1 hour']];

const secs = (iso) => new Date(iso).getTime() / 1000;

export function showEndpoint(main, name, setLive) {
  document.title = `${name} · Kiln`;
  const kiln = window.kiln;
  const st = {
    name,
    history: [],
    transitions: new Map(), // alarm name → [transition], oldest first
    createIDs: new Set(),
    windowSecs: 300,
    last: null,
    // The endpoint's metrics per variant and config, from the metrics store
    // (snapshot.Series): key → {variant, config, role, points: Map(second →
    // metrics)}. They outlive the fleets, so a fleet that lived one second
    // keeps its errors on the charts, and the first snapshot's backfill puts
    // the recent past on them when the page opens.
    series: new Map(),
  };
  kiln.series = st.series;

  // ---- skeleton
  const status = h('span', {id: 'ep-status'});
  const sub = h('p', {id: 'ep-sub', class: 'muted'});
  const failure = h('div', {id: 'ep-failure'});
  const problems = h('div', {id: 'problems', role: 'alert'});
  const depBody = h('div', {id: 'deployment-body'}, h('p', {class: 'muted'}, 'Waiting for the first snapshot…'));
  const stopBtn = h('button', {type: 'button', class: 'btn btn-warn', id: 'stop', disabled: true}, 'Stop update');
  const rollbackBtn = h('button', {type: 'button', class: 'btn btn-danger', id: 'rollback', disabled: true}, 'Roll back');
  const actionStatus = h('p', {id: 'action-status', class: 'action-status', role: 'status', 'aria-live': 'polite'});
  const trafficBody = h('div', {id: 'traffic-body'});
  const alarmsBody = h('div', {id: 'alarms-body'});
  const instancesBody = h('div', {id: 'instances-body'}, h('p', {class: 'muted'}, 'Loading instances…'));
  const timeline = h('ol', {id: 'timeline', class: 'timeline', reversed: true});
  const windowSel = h('select', {id: 'window'}, WINDOWS.map(([v, label]) => h('option', {value: v, selected: v === st.windowSecs}, label)));
  windowSel.addEventListener('change', () => {
    st.windowSecs = Number(windowSel.value);
    drawCharts();
  });

  const figures = {};
  const figure = (key, title, wide) => {
    const box = h('div', {class: 'chart-box', id: `chart-${key}`});
    const now = h('span', {class: 'chart-now', id: `chart-${key}-now`});
    figures[key] = {box, now};
    return h('figure', {class: wide ? 'chart chart-wide' : 'chart', 'aria-labelledby': `chart-${key}-title`},
      h('figcaption', {}, h('span', {class: 'chart-title', id: `chart-${key}-title`}, title), now),
      box);
  };

  replace(main,
    h('nav', {class: 'crumbs', 'aria-label': 'Breadcrumb'}, h('ol', {},
      h('li', {}, h('a', {href: '/ui/'}, 'Endpoints')),
      h('li', {}, h('a', {href: location.pathname, 'aria-current': 'page'}, name)))),
    h('div', {class: 'title-row'}, h('h1', {}, name), status),
    sub, failure, problems,
    h('div', {class: 'summary'},
      h('section', {class: 'panel', id: 'deployment', 'aria-labelledby': 'deployment-title'},
        h('h2', {id: 'deployment-title'}, 'Deployment'),
        depBody,
        h('div', {class: 'actions'}, stopBtn, rollbackBtn),
        actionStatus),
      h('section', {class: 'panel', id: 'traffic', 'aria-labelledby': 'traffic-title'},
        h('h2', {id: 'traffic-title'}, 'Traffic'),
        trafficBody),
      h('section', {class: 'panel', id: 'alarms', 'aria-labelledby': 'alarms-title'},
        h('h2', {id: 'alarms-title'}, 'Alarms'),
        alarmsBody)),
    h('section', {'aria-labelledby': 'metrics-title'},
      h('div', {class: 'section-head'},
        h('h2', {id: 'metrics-title'}, 'Live metrics'),
        h('span', {class: 'small muted'}, 'One point a second per variant and config, from the metrics store: the last 15 minutes when the page opened, then live.'),
        h('label', {}, 'Show the last ', windowSel)),
      h('div', {class: 'charts'},
        figure('share', 'Share of traffic on blue (old) and green (new) fleets', true),
        figure('invocations', 'Invocations per second'),
        figure('errors4xx', '4xx errors per second'),
        figure('errors5xx', '5xx errors per second'),
        figure('latency', 'Model latency, p50 (dashed) and p99 (ms)'))),
    h('div', {class: 'two-col'},
      h('section', {'aria-labelledby': 'instances-title'},
        h('div', {class: 'section-head'}, h('h2', {id: 'instances-title'}, 'Instances')),
        instancesBody),
      h('section', {'aria-labelledby': 'timeline-title'},
        h('div', {class: 'section-head'}, h('h2', {id: 'timeline-title'}, 'Deployment timeline')),
        timeline)),
  );

  const fmtRate = (v) => num(v, v < 10 ? 2 : 1);
  const charts = {
    share: new LiveChart(figures.share.box, {key: 'share', fmt: (v) => pct(v), yMin: 0, yMax: 1, markers: shareMarkers}),
    invocations: new LiveChart(figures.invocations.box, {key: 'invocations', fmt: fmtRate}),
    errors4xx: new LiveChart(figures.errors4xx.box, {key: 'errors4xx', fmt: fmtRate}),
    errors5xx: new LiveChart(figures.errors5xx.box, {key: 'errors5xx', fmt: fmtRate}),
    latency: new LiveChart(figures.latency.box, {key: 'latency', fmt: (v) => num(v, v < 10 ? 2 : 1)}),
  };

  // ---- actions
  stopBtn.addEventListener('click', () => act('stop'));
  rollbackBtn.addEventListener('click', () => act('rollback'));

  async function act(kind) {
    const d = st.last && st.last.Endpoint.Deployment;
    if (!d) return;
    const from = blueConfigs(st.last).join(', ') || 'the old fleets';
    const text = kind === 'stop'
      ? `Stop the update of ${name} to ${d.EndpointConfigName}? The deployment stops and rolls back: all traffic returns at once to ${from}, then the new fleets are drained and removed.`
      : `Roll back the update of ${name} to ${d.EndpointConfigName}? All traffic returns at once to ${from}, then the new fleets are drained and removed.`;
    const ok = await confirmDialog(kind === 'stop' ? 'Stop the update?' : 'Roll back?', text, kind === 'stop' ? 'Stop update' : 'Roll back');
    if (!ok) {
      actionStatus.textContent = '';
      return;
    }
    actionStatus.className = 'action-status';
    actionStatus.textContent = kind === 'stop' ? 'Stopping the update…' : 'Rolling back…';
    try {
      await api('POST', kind === 'stop' ? path.stop(name) : path.rollback(name));
      actionStatus.textContent = kind === 'stop'
        ? 'Update stopped: traffic is going back to the old fleets.'
        : 'Rollback started: traffic is going back to the old fleets.';
    } catch (e) {
      actionStatus.className = 'action-status notice notice-bad';
      actionStatus.textContent = `Kiln refused: ${e.message}`;
    }
  }

  // ---- the live stream
  function onSnapshot(s) {
    st.last = s;
    const d = s.Endpoint.Deployment;
    if (d && d.Kind === 'Create') st.createIDs.add(d.ID);
    kiln.snapshots.push(s);
    kiln.greenShare.push(s.GreenSharePeak);
    if (kiln.snapshots.length > MAX_SNAPSHOTS) {
      kiln.snapshots.splice(0, kiln.snapshots.length - MAX_SNAPSHOTS);
      kiln.greenShare.splice(0, kiln.greenShare.length - MAX_SNAPSHOTS);
    }
    if (s.HistoryComplete) {
      st.history = s.History.slice();
      // The endpoint's first deployment created it: no traffic moved.
      if (st.history.length && st.history[0].DeploymentID) st.createIDs.add(st.history[0].DeploymentID);
    } else st.history.push(...s.History);
    mergeSeries(s);
    for (const t of s.AlarmTransitions) {
      const list = st.transitions.get(t.AlarmName) || [];
      if (!list.some((x) => x.Time === t.Time && x.To === t.To)) list.push(t);
      st.transitions.set(t.AlarmName, list.slice(-8));
    }
    renderHeader(s);
    renderDeployment(s);
    renderTraffic(s);
    renderAlarms(s);
    if (s.HistoryComplete || s.History.length) renderTimeline();
    replace(problems, s.Errors && s.Errors.length
      ? h('p', {class: 'notice notice-warn'}, 'Some of this second could not be read: ' + s.Errors.join('; '))
      : null);
    drawCharts();
  }

  // mergeSeries replaces the seconds from s.SeriesFrom to s.Second of every
  // series with what the snapshot carries, and forgets seconds older than
  // the page keeps.
  function mergeSeries(s) {
    const from = secs(s.SeriesFrom), to = secs(s.Second);
    const oldest = to - MAX_SNAPSHOTS;
    for (const ser of st.series.values()) {
      for (const t of ser.points.keys()) if ((t >= from && t <= to) || t < oldest) ser.points.delete(t);
    }
    for (const x of s.Series || []) {
      const key = `${x.VariantName}\u0000${x.EndpointConfigName}`;
      let ser = st.series.get(key);
      if (!ser) {
        ser = {variant: x.VariantName, config: x.EndpointConfigName, role: '', points: new Map()};
        st.series.set(key, ser);
      }
      // A config keeps the first role it was seen in: a green fleet that
      // took over stays green on the charts, so the old and the new stay
      // apart.
      if (!ser.role && x.Role) ser.role = x.Role;
      ser.live = Boolean(x.Role);
      for (const p of x.Points) ser.points.set(secs(p.Second), p);
    }
  }

  let es = null;
  function connect() {
    es = new EventSource('/ui/api/events?endpoint=' + encodeURIComponent(name));
    es.addEventListener('snapshot', (ev) => {
      const s = JSON.parse(ev.data);
      onSnapshot(s);
      setLive('live', `Live · ${clock(s.Time)}`);
    });
    es.addEventListener('problem', (ev) => {
      const p = JSON.parse(ev.data);
      replace(problems, h('p', {class: 'notice notice-warn'}, `Kiln could not read the endpoint this second: ${p.message}`));
    });
    es.addEventListener('gone', (ev) => {
      es.close();
      const p = JSON.parse(ev.data);
      setLive('down', 'Endpoint deleted');
      replace(problems, h('p', {class: 'notice notice-bad'}, `${p.message} It was deleted. `, h('a', {href: '/ui/'}, 'See all endpoints.')));
      stopBtn.disabled = rollbackBtn.disabled = true;
    });
    es.addEventListener('error', () => {
      setLive('down', 'Reconnecting…');
      // EventSource retries by itself after a dropped connection, but not
      // after an answer other than 200: find out which, and why.
      if (es.readyState === EventSource.CLOSED) diagnose();
    });
  }

  async function diagnose() {
    try {
      await api('GET', '/ui/api/session'); // 401 goes to the sign-in form
      await api('GET', path.endpoint(name));
      setTimeout(connect, 2000);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        setLive('down', 'Not found');
        replace(problems, h('p', {class: 'notice notice-bad'}, e.message, ' ', h('a', {href: '/ui/'}, 'See all endpoints.')));
        return;
      }
      if (e instanceof ApiError && e.status === 401) return;
      replace(problems, h('p', {class: 'notice notice-bad'}, `The live stream stopped: ${e.message} Retrying…`));
      setTimeout(connect, 5000);
    }
  }
  connect();

  // ---- instances, from /v1 every two seconds
  async function pollInstances() {
    try {
      const insts = (await api('GET', path.instances(name))) || [];
      replace(instancesBody, instancesTable(insts, st.last));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) {
        replace(instancesBody, h('p', {class: 'notice notice-warn'}, `Could not read the instances: ${e.message}`));
      }
    }
    setTimeout(pollInstances, INSTANCES_MS);
  }
  pollInstances();

  // ---- rendering
  function renderHeader(s) {
    const ep = s.Endpoint;
    replace(status, badge(ep.EndpointStatus, statusKind(ep.EndpointStatus)));
    replace(sub, 'Config ', h('strong', {id: 'ep-config', class: 'name'}, ep.EndpointConfigName),
      ' · created ', when(ep.CreationTime), ' · last modified ', when(ep.LastModifiedTime));
    replace(failure, outcome(ep));
  }

  function renderDeployment(s) {
    const ep = s.Endpoint;
    const d = ep.Deployment;
    const live = Boolean(d && d.Kind !== 'Create');
    stopBtn.disabled = !live || Boolean(d.RollbackReason) || Boolean(d.StopRequested);
    rollbackBtn.disabled = !live || Boolean(d.RollbackReason);
    if (!d) {
      const last = st.history[st.history.length - 1];
      replace(depBody,
        h('p', {id: 'deployment-none'}, 'No deployment in progress.'),
        last ? h('p', {class: 'small muted'}, 'Last: ', longText(last.Message), ' (', when(last.Time), ')') : null);
      return;
    }
    const alarms = (d.DeploymentConfig && d.DeploymentConfig.AutoRollbackConfiguration && d.DeploymentConfig.AutoRollbackConfiguration.Alarms || []).map((a) => a.AlarmName);
    replace(depBody,
      h('p', {}, h('strong', {id: 'deployment-title-text'}, deploymentTitle(d)),
        d.RollbackReason ? [' ', badge(byOperator(d.RollbackReason) ? 'Rolling back (operator)' : 'Rolling back', byOperator(d.RollbackReason) ? 'info' : 'warn')] : null),
      h('dl', {class: 'kv'},
        h('dt', {}, 'Phase'), h('dd', {id: 'deployment-phase'}, d.Phase),
        h('dt', {}, 'Step'), h('dd', {id: 'deployment-step'}, String(d.Step)),
        h('dt', {}, 'From'), h('dd', {}, blueConfigs(s).length ? blueConfigs(s).map((c, i) => [i ? ', ' : '', h('span', {class: 'name'}, c)]) : '–'),
        h('dt', {}, 'Started'), h('dd', {}, when(d.StartTime)),
        h('dt', {}, 'In phase since'), h('dd', {}, when(d.PhaseStartTime)),
        h('dt', {}, 'Watched alarms'), h('dd', {}, alarms.length ? alarms.join(', ') : 'none'),
        d.RollbackReason ? [h('dt', {}, 'Rollback reason'), h('dd', {id: 'rollback-reason'}, longText(d.RollbackReason))] : null,
        d.StopRequested ? [h('dt', {}, 'Stop'), h('dd', {}, 'requested by an operator')] : null));
  }

  function renderTraffic(s) {
    // The variant column only helps when there are several.
    const variants = new Set(s.Fleets.map((f) => f.VariantName)).size > 1;
    const rows = s.Fleets.map((f) =>
      h('tr', {'data-fleet': f.ID, 'data-role': f.Role},
        h('th', {scope: 'row'}, h('span', {class: `role role-${f.Role} name`}, f.ID)),
        h('td', {}, f.Role),
        variants ? h('td', {}, f.VariantName) : null,
        h('td', {}, h('span', {class: 'name'}, f.EndpointConfigName)),
        h('td', {class: 'num', title: `${f.ActiveInstanceCount} of the fleet's ${f.InstanceCount} instances take traffic`}, `${f.ActiveInstanceCount} of ${f.InstanceCount}`),
        h('td', {class: 'num'}, pct(f.EndpointShare))));
    replace(trafficBody,
      h('p', {class: 'bignum'},
        h('span', {id: 'share-green', class: 'green', 'data-value': s.Share.Green}, pct(s.Share.Green)),
        h('span', {class: 'small muted'}, ' on green · '),
        h('span', {id: 'share-blue', 'data-value': s.Share.Blue}, pct(s.Share.Blue)),
        h('span', {class: 'small muted'}, ' on blue')),
      shareBar(s.Share.Blue, s.Share.Green, true),
      h('div', {class: 'table-wrap mt'},
        h('table', {class: 'small'},
          h('caption', {class: 'sr-only'}, 'Fleets'),
          h('thead', {}, h('tr', {},
            h('th', {scope: 'col'}, 'Fleet'), h('th', {scope: 'col'}, 'Role'), variants ? h('th', {scope: 'col'}, 'Variant') : null,
            h('th', {scope: 'col'}, 'Config'), h('th', {scope: 'col', class: 'num', title: 'Instances that take traffic, of the instances the fleet runs'}, 'Serving'), h('th', {scope: 'col', class: 'num'}, 'Share'))),
          h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', {colspan: 6, class: 'muted'}, 'No fleets.'))))));
  }

  function renderAlarms(s) {
    if (s.Alarms.length === 0) {
      replace(alarmsBody, h('p', {class: 'muted'}, 'No alarm watches this endpoint. Name alarms with ', h('code', {}, 'kiln deploy --alarm'), ' to roll back on them.'));
      return;
    }
    replace(alarmsBody, h('ul', {class: 'alarm-list'}, s.Alarms.map((a) => {
      const ts = (st.transitions.get(a.AlarmName) || []).slice(-4).reverse();
      return h('li', {class: 'alarm', 'data-alarm': a.AlarmName, 'data-state': a.StateValue},
        h('div', {class: 'alarm-head'},
          h('span', {class: 'alarm-name'}, a.AlarmName),
          badge(a.StateValue, alarmKind(a.StateValue)),
          a.Watched ? badge('watched by the deployment', 'info') : null),
        h('p', {class: 'alarm-cond'}, condition(a), a.Chart ? ` · threshold drawn on the ${chartName(a.Chart)} chart` : ''),
        a.StateReason ? h('p', {class: 'small muted'}, longText(a.StateReason)) : null,
        ts.length ? h('ul', {class: 'transitions', 'aria-label': `Recent state changes of ${a.AlarmName}`}, ts.map((t) =>
          h('li', {'data-to': t.To}, when(t.Time), ` ${t.From} → ${t.To}`))) : null);
    })));
  }

  function renderTimeline() {
    const evs = st.history.slice().reverse();
    replace(timeline, evs.length === 0
      ? h('li', {}, h('span', {class: 'muted'}, 'No deployments yet.'))
      : evs.map((ev) => h('li', {'data-kind': kindOf(ev), 'data-phase': ev.Phase},
        h('span', {class: 'when'}, when(ev.Time)),
        badge(ev.Phase + (ev.Step ? ` · step ${ev.Step}` : ''), kindOf(ev) === 'bad' ? 'bad' : kindOf(ev) === 'ok' ? 'ok' : 'info'),
        ' ', h('span', {class: 'small muted'}, `${pct(ev.GreenShare)} on green`),
        h('span', {class: 'msg'}, longText(ev.Message)))));
  }

  // kindOf is eventKind, except that the rollback of an update an operator
  // stopped or rolled back is no failure: it is told in neutral colours.
  function kindOf(ev) {
    const kind = eventKind(ev);
    if (kind !== 'bad' || !ev.DeploymentID) return kind;
    return st.history.some((x) => x.DeploymentID === ev.DeploymentID && byOperator(x.Message)) ? 'info' : kind;
  }

  // ---- charts
  function shareMarkers() {
    if (!st.last) return [];
    const from = charts.share.range ? charts.share.range[0] : secs(st.last.Time) - st.windowSecs;
    return st.history.filter((ev) => secs(ev.Time) >= from && !st.createIDs.has(ev.DeploymentID)).map((ev) => ({
      t: secs(ev.Time),
      label: ev.Phase,
      color: kindOf(ev) === 'bad' ? '#dc2626' : kindOf(ev) === 'ok' ? '#15803d' : '#64748b',
    }));
  }

  function drawCharts() {
    const snaps = kiln.snapshots;
    if (snaps.length === 0) return;
    const cur = snaps[snaps.length - 1];
    const lastT = secs(cur.Time);
    // The window, but not the empty past before anything was recorded: it
    // starts at the first point the page has (from the backfill, the
    // history or the stream), with a minute at least.
    let first = secs(snaps[0].Time);
    for (const ser of st.series.values()) for (const t of ser.points.keys()) first = Math.min(first, t);
    for (const ev of st.history) if (!st.createIDs.has(ev.DeploymentID)) first = Math.min(first, secs(ev.Time));
    const range = [Math.max(lastT - st.windowSecs, Math.min(first - 2, lastT - MIN_SPAN)), lastT];

    // Traffic share: the deployment's transitions, each a point of its own
    // so that steps land where they happened, and one point a snapshot.
    // Before the first snapshot (the past the page was opened on) the
    // transitions alone draw it; after a deployment ends, all traffic is on
    // the fleets it left, which count as blue.
    const pts = [];
    let before = null;
    for (const ev of st.history) {
      if (st.createIDs.has(ev.DeploymentID)) continue;
      const t = secs(ev.Time);
      if (t <= range[0]) before = ev;
      else if (t < lastT) {
        pts.push([t, 1 - ev.GreenShare, ev.GreenShare]);
        if (TERMINAL.has(ev.Phase)) pts.push([t + 0.001, 1, 0]);
      }
    }
    const startGreen = before && !TERMINAL.has(before.Phase) ? before.GreenShare : 0;
    const firstSnap = secs(snaps[0].Time);
    if (firstSnap > range[0]) pts.push([range[0], 1 - startGreen, startGreen]);
    for (const s of snaps) {
      const t = secs(s.Time);
      if (t >= range[0]) pts.push([t, s.Share.Blue, s.Share.Green]);
    }
    pts.sort((a, b) => a[0] - b[0]);
    charts.share.update({
      x: pts.map((p) => p[0]),
      range,
      series: [
        {label: 'Blue', stroke: fleetColor('blue', 0), values: pts.map((p) => p[1]), stepped: true, fill: 'rgba(37, 99, 235, 0.08)'},
        {label: 'Green', stroke: fleetColor('green', 0), values: pts.map((p) => p[2]), stepped: true, fill: 'rgba(21, 128, 61, 0.12)'},
      ],
    });
    figures.share.now.textContent = `now: blue ${pct(cur.Share.Blue)} · green ${pct(cur.Share.Green)}`;

    // Metric charts: one point a second over the window, one series per
    // variant and config that had requests in it (or runs now). A second
    // without requests counts 0 while the config runs, and is a gap before
    // and after it did.
    const lastSecond = secs(cur.Second);
    const firstSecond = Math.floor(range[0]);
    const xs = [];
    for (let t = firstSecond; t <= lastSecond; t++) xs.push(t + 1);
    const shown = [...st.series.values()].filter((ser) => ser.live || [...ser.points.keys()].some((t) => t >= firstSecond));
    const variants = new Set(shown.map((ser) => ser.variant));
    const variantIndex = new Map([...variants].map((v, i) => [v, i]));
    for (const ser of shown) ser.color = fleetColor(ser.role || 'retired', variantIndex.get(ser.variant));
    const label = (ser) => `${ser.config}${variants.size > 1 ? ' · ' + ser.variant : ''} (${ser.role || 'retired'})`;
    const values = (ser, get, count) => {
      let lo = -Infinity, hi = Infinity;
      if (!ser.live) {
        const ts = [...ser.points.keys()];
        lo = Math.min(...ts);
        hi = Math.max(...ts);
      }
      return xs.map((x) => {
        const t = x - 1;
        const p = ser.points.get(t);
        if (p) {
          const v = get(p);
          return v === null || v === undefined ? null : v;
        }
        return count && t >= lo && t <= hi ? 0 : null;
      });
    };
    const thresholds = (chart) => cur.Alarms.filter((a) => a.Chart === chart && a.ChartThreshold !== null && a.ChartThreshold !== undefined).map((a) => ({
      label: `${a.AlarmName} threshold (${a.StateValue})`,
      stroke: STATE_COLORS[a.StateValue] || STATE_COLORS.OK,
      dash: [8, 4],
      width: 2,
      values: xs.map(() => a.ChartThreshold),
    }));
    const countChart = (key, field) => {
      const series = shown.map((ser) => ({label: label(ser), stroke: ser.color, values: values(ser, (m) => m[field], true)}));
      charts[key].update({x: xs, range, series: [...series, ...thresholds(key)]});
      figures[key].now.textContent = 'now: ' + (cur.Fleets.map((f) => `${f.ID} ${num(f.Metrics[field], 1)}/s`).join(' · ') || '–');
    };
    countChart('invocations', 'Invocations');
    countChart('errors4xx', 'Invocation4XXErrors');
    countChart('errors5xx', 'Invocation5XXErrors');

    const ms = (v) => (v === null || v === undefined ? null : v / 1000);
    const lat = [];
    for (const ser of shown) {
      lat.push({label: `${label(ser)} p99`, stroke: ser.color, values: values(ser, (m) => ms(m.ModelLatencyP99), false)});
      lat.push({label: `${label(ser)} p50`, stroke: ser.color, dash: [5, 4], width: 1.5, values: values(ser, (m) => ms(m.ModelLatencyP50), false)});
    }
    charts.latency.update({x: xs, range, series: [...lat, ...thresholds('latency')]});
    figures.latency.now.textContent = 'now p99: ' + (cur.Fleets.map((f) => `${f.ID} ${f.Metrics.ModelLatencyP99 === null ? '–' : num(f.Metrics.ModelLatencyP99 / 1000, 2) + ' ms'}`).join(' · ') || '–');
  }
}

// Phases that end a deployment: all traffic is then on the fleets it left.
const TERMINAL = new Set(['Completed', 'RolledBack', 'Failed', 'RollbackFailed']);

function chartName(key) {
  return {invocations: 'invocations', errors4xx: '4xx errors', errors5xx: '5xx errors', latency: 'latency'}[key] || key;
}

// blueConfigs names the configs of the fleets traffic would go back to.
function blueConfigs(s) {
  return [...new Set(s.Fleets.filter((f) => f.Role === 'blue').map((f) => f.EndpointConfigName))];
}

// eventKind sorts a deployment transition into bad (rolling back, failed),
// ok (done) or info, by its phase, or else by the words of its message.
function eventKind(ev) {
  switch (ev.Phase) {
    case 'RollingBack': case 'RolledBack': case 'Failed': case 'RollbackFailed': return 'bad';
    case 'Completed': return 'ok';
    case 'Provisioning': case 'ActivatingTraffic': case 'Baking': case 'Retiring': case 'Terminating': return 'info';
  }
  const text = `${ev.Phase} ${ev.Message}`;
  if (/roll|fail|stop|alarm|timed? ?out/i.test(text)) return 'bad';
  if (/complet|succe|done|finish/i.test(text)) return 'ok';
  return 'info';
}

function instancesTable(insts, snap) {
  if (insts.length === 0) return h('p', {class: 'muted'}, 'No instances are running.');
  const roles = new Map((snap ? snap.Fleets : []).map((f) => [f.ID, f.Role]));
  insts.sort((a, b) => a.FleetID.localeCompare(b.FleetID) || a.Ordinal - b.Ordinal);
  return h('div', {class: 'table-wrap'}, h('table', {class: 'small'},
    h('caption', {class: 'sr-only'}, 'Instances'),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Instance'), h('th', {scope: 'col'}, 'Config'), h('th', {scope: 'col'}, 'State'),
      h('th', {scope: 'col'}, 'Routable'), h('th', {scope: 'col', class: 'num'}, 'Restarts'), h('th', {scope: 'col'}, 'Started'),
      h('th', {scope: 'col'}, 'Last error'))),
    h('tbody', {}, insts.map((i) => {
      const role = roles.get(i.FleetID);
      return h('tr', {'data-instance': i.ID, 'data-state': i.State},
        h('th', {scope: 'row'}, h('span', {class: role ? `role role-${role} name` : 'name'}, `${i.FleetID}/${i.Ordinal}`)),
        h('td', {}, h('span', {class: 'name'}, i.EndpointConfigName)),
        h('td', {}, h('span', {class: `chip chip-${instanceKind(i.State)}`}, i.State)),
        h('td', {}, i.Routable ? 'yes' : 'no'),
        h('td', {class: 'num'}, String(i.Restarts)),
        h('td', {}, isZero(i.StartedAt) ? '–' : when(i.StartedAt)),
        h('td', {}, i.LastError || ''));
    }))));
}

// confirmDialog asks in the page's <dialog> and resolves to true when the
// person confirms. Cancel has the focus first; Escape cancels; the focus
// returns to what opened the dialog.
function confirmDialog(title, text, okLabel) {
  const dialog = document.getElementById('confirm');
  const opener = document.activeElement;
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (opener && typeof opener.focus === 'function') opener.focus();
      resolve(dialog.returnValue === 'confirm');
    }, {once: true});
    dialog.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}
