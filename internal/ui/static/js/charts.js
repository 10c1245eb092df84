// Live charts, drawn with uPlot (vendored; the global `uPlot`).
//
// A chart is rebuilt when the set of its series changes (a fleet appears or
// goes, an alarm changes state) and otherwise only gets new data, which is
// cheap enough to do every second.

const HEIGHT = 220;

// Colours by fleet role; the fleets of a second variant take the next shade.
const SHADES = {
  blue: ['#2563eb', '#7c3aed', '#0891b2', '#1e3a8a'],
  green: ['#15803d', '#ca8a04', '#0d9488', '#3f6212'],
  // Configs no fleet runs any more (a rolled-back canary, the fleets a
  // finished deployment replaced), first seen after they were gone.
  retired: ['#a21caf', '#be185d', '#78716c', '#9f1239'],
};

export function fleetColor(role, index) {
  const shades = SHADES[role] || SHADES.blue;
  return shades[index % shades.length];
}

const timeFmt = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
// Whole seconds only: the data has one point a second.
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const timeOfDay = (secs) => timeFmt.format(new Date(secs * 1000));

export const STATE_COLORS = {ALARM: '#dc2626', OK: '#64748b', INSUFFICIENT_DATA: '#d97706'};

export class LiveChart {
  // key names the chart in window.kiln.charts; fmt formats the y axis.
  constructor(box, {key, fmt, yMin = 0, yMax, minTop = 1, markers}) {
    this.box = box;
    this.key = key;
    this.fmt = fmt || ((v) => String(v));
    this.yMin = yMin;
    this.yMax = yMax;
    this.minTop = minTop;
    this.markers = markers;
    this.u = null;
    this.sig = '';
    this.range = null;
    this.markerLabels = [];
    // Resized in the next frame, not in the observer's callback: resizing
    // the chart there resizes what is observed, which the browser reports
    // as an error ("ResizeObserver loop completed ...").
    let pending = false;
    new ResizeObserver(() => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        if (this.u) this.u.setSize({width: this.width(), height: HEIGHT});
      });
    }).observe(box);
  }

  width() {
    return Math.max(280, this.box.clientWidth || 600);
  }

  // update draws model = {x: [...], range: [min, max], series: [{label,
  // stroke, values, dash, width, fill, stepped}]}.
  update(model) {
    this.range = model.range;
    const data = [model.x, ...model.series.map((s) => s.values)];
    const sig = model.series.map((s) => `${s.label}|${s.stroke}|${s.dash || ''}`).join(';');
    if (this.u && sig === this.sig) {
      this.u.setData(data);
      return;
    }
    if (this.u) this.u.destroy();
    this.sig = sig;
    this.u = new uPlot(this.options(model.series), data, this.box);
    window.kiln.charts[this.key] = this.u;
    window.kiln.liveCharts[this.key] = this;
  }

  options(series) {
    const fmt = this.fmt;
    const chart = this;
    const plugins = [];
    if (this.markers) plugins.push(markerPlugin(this.markers, this));
    return {
      width: this.width(),
      height: HEIGHT,
      cursor: {sync: {key: 'kiln'}, drag: {x: false, y: false}},
      legend: {live: true},
      plugins,
      scales: {
        x: {
          time: true,
          range: (u, min, max) => chart.range || [min, max],
        },
        y: {
          range: (u, min, max) => {
            if (chart.yMax !== undefined) return [chart.yMin, chart.yMax];
            const top = Math.max(chart.minTop, (max || 0) * 1.15);
            return [chart.yMin, top];
          },
        },
      },
      axes: [
        {stroke: '#526075', grid: {stroke: '#eef2f7'}, ticks: {stroke: '#d9e0ea'}, space: 70, incrs: TIME_STEPS, values: (u, splits) => splits.map(timeOfDay)},
        {stroke: '#526075', grid: {stroke: '#eef2f7'}, ticks: {stroke: '#d9e0ea'}, size: 58, values: (u, splits) => splits.map(fmt)},
      ],
      series: [
        {value: (u, v) => (v === null || v === undefined ? '–' : timeOfDay(v))},
        ...series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: s.width || 2,
          dash: s.dash,
          fill: s.fill,
          spanGaps: false,
          points: {show: false},
          paths: s.stepped ? uPlot.paths.stepped({align: 1}) : undefined,
          value: (u, v) => (v === null || v === undefined ? '–' : fmt(v)),
        })),
      ],
    };
  }
}

// markerPlugin draws a dashed vertical line, labelled, at each of marks()
// = [{t, label, color}] (times in seconds), for the deployment's transitions.
// Labels never overlap and are never cut: each goes on the first of a few
// rows where it fits, to the right of its line, or to its left near the
// right edge; a label that fits nowhere is left out (its line stays, and the
// timeline below names it). What was drawn is kept in chart.markerLabels,
// in CSS pixels relative to the canvas, for tests.
const MARKER_ROWS = 3;

function markerPlugin(marks, chart) {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        const dpr = window.devicePixelRatio || 1;
        const {left, top, width, height} = u.bbox;
        const gap = 6 * dpr;
        const rowHeight = 14 * dpr;
        const rows = Array.from({length: MARKER_ROWS}, () => []); // [x0, x1] taken in each row
        const drawn = [];
        ctx.save();
        ctx.lineWidth = dpr;
        ctx.setLineDash([4 * dpr, 3 * dpr]);
        ctx.font = `${11 * dpr}px system-ui, sans-serif`;
        ctx.textBaseline = 'top';
        for (const m of marks()) {
          const x = Math.round(u.valToPos(m.t, 'x', true));
          if (x < left || x > left + width) continue;
          ctx.strokeStyle = m.color;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          const w = ctx.measureText(m.label).width;
          let x0 = x + 3 * dpr;
          if (x0 + w > left + width) x0 = x - 3 * dpr - w;
          if (x0 < left) continue;
          const row = rows.findIndex((taken) => taken.every(([a, b]) => x0 + w + gap <= a || x0 >= b + gap));
          if (row < 0) continue;
          rows[row].push([x0, x0 + w]);
          const y = top + 2 * dpr + row * rowHeight;
          ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
          ctx.fillRect(x0 - dpr, y - dpr, w + 2 * dpr, rowHeight - dpr);
          ctx.fillStyle = m.color;
          ctx.fillText(m.label, x0, y);
          drawn.push({label: m.label, left: x0 / dpr, right: (x0 + w) / dpr, top: y / dpr, bottom: (y + 12 * dpr) / dpr,
            plotLeft: left / dpr, plotRight: (left + width) / dpr});
        }
        ctx.restore();
        chart.markerLabels = drawn;
      }],
    },
  };
}
