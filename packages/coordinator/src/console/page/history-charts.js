// Small inline SVG charts from snapshot.history: decisions/s, p99, backlog, DLQ/s.

import { $, fmtMs, fmtNum, setText, ui } from './dom.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 56;
const charts = new Map();
function chart(id) {
  let c = charts.get(id);
  if (!c) {
    const fig = $(id);
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    const area = document.createElementNS(SVG_NS, 'polygon');
    const line = document.createElementNS(SVG_NS, 'polyline');
    svg.append(area, line);
    fig.append(svg);
    c = { fig, svg, area, line, now: fig.querySelector('.now') };
    charts.set(id, c);
  }
  return c;
}
function drawChart(id, history, pick, format = fmtNum) {
  const c = chart(id);
  const pts = history.map((h) => [h.at, pick(h)]).filter((p) => p[1] !== null && p[1] !== undefined && Number.isFinite(p[1]));
  const last = history.length > 0 ? pick(history[history.length - 1]) : null;
  if (pts.length === 0) {
    c.line.setAttribute('points', '');
    c.area.setAttribute('points', '');
    setText(c.now, '–');
    return;
  }
  const t0 = history[0].at;
  const span = Math.max(1, history[history.length - 1].at - t0);
  const max = Math.max(...pts.map((p) => p[1]));
  const top = max > 0 ? max * 1.1 : 1;
  const xy = pts.map(([t, v]) => `${(((t - t0) / span) * W).toFixed(1)},${(H - (v / top) * (H - 2)).toFixed(1)}`);
  c.line.setAttribute('points', xy.join(' '));
  const x0 = (((pts[0][0] - t0) / span) * W).toFixed(1);
  const x1 = (((pts[pts.length - 1][0] - t0) / span) * W).toFixed(1);
  c.area.setAttribute('points', `${x0},${H} ${xy.join(' ')} ${x1},${H}`);
  setText(c.now, `${last === null || last === undefined ? '–' : format(last)} · max ${format(max)}`);
}
export function renderCharts(s) {
  const h = s.history;
  const span = h.length > 1 ? h[h.length - 1].at - h[0].at : 0;
  setText(ui.historySpan, span === 0 ? '' : `last ${span < 90_000 ? `${Math.round(span / 1000)} s` : `${Math.round(span / 6000) / 10} min`}`);
  drawChart('chart-decisions', h, (p) => p.decisions_per_s);
  drawChart('chart-p99', h, (p) => p.p99_ms, fmtMs);
  drawChart('chart-backlog', h, (p) => p.backlog);
  drawChart('chart-dlq', h, (p) => p.dlq_per_s);
}
