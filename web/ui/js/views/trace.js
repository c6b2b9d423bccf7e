// A workflow's trace as a timeline: one row per task with its queueing and attempt spans
// (GET /traces/workflows/{id}/spans), the critical path from the server's analysis
// (GET /traces/workflows/analyze/{id}?view=flowmesh) highlighted and listed.
import { api } from '../api.js';
import { badge, fmtDuration, h, s, table } from '../dom.js';

const ROW_H = 18;
const LABEL_W = 180;
const PLOT_W = 900;
const AXIS_H = 24;

export async function render(root, ctx) {
  const id = ctx.params.id;
  const enc = encodeURIComponent(id);
  const [analysis, spans] = await Promise.all([
    api(`/traces/workflows/analyze/${enc}?view=flowmesh`, { signal: ctx.signal }),
    api(`/traces/workflows/${enc}/spans`, { signal: ctx.signal }),
  ]);
  const wf = analysis.workflow || {};
  const critical = new Set(((analysis.critical_path || {}).tasks || []).map((t) => t.task_id));
  const b = analysis.breakdown || {};
  const cp = analysis.critical_path || {};
  root.append(
    h('div', { class: 'row' }, h('h1', {}, `Trace: ${wf.name || id}`), badge(wf.status),
      h('span', { class: 'spacer' }), h('a', { href: `#/workflows/${enc}` }, 'Task graph')),
    h('dl', { class: 'facts' },
      [['Makespan', fmtDuration(analysis.makespan_s)], ['Tasks', `${b.tasks} (${b.executed} executed, ${b.reused} reused)`],
        ['Attempts', String(b.attempts)], ['Queueing (all tasks)', fmtDuration(b.queue_s_total)],
        ['Running (all tasks)', fmtDuration(b.run_s_total)],
        ['Critical path', `${fmtDuration(cp.duration_s)}: ${fmtDuration(cp.queue_s)} queued, ${fmtDuration(cp.run_s)} running, ${fmtDuration(cp.other_s)} other`]]
        .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
  );

  // Rows: task spans in start order; each row draws its queue and attempt spans.
  const tasks = spans.filter((sp) => sp.kind === 'task').sort((a, b2) => a.start - b2.start);
  const children = new Map();
  for (const sp of spans) {
    if (sp.kind === 'task' || !sp.parent) continue;
    const key = sp.kind === 'step' ? sp.task_id : sp.parent;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(sp);
  }
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const sp of spans) {
    if (sp.start) t0 = Math.min(t0, sp.start);
    if (sp.end) t1 = Math.max(t1, sp.end);
    if (sp.start) t1 = Math.max(t1, sp.start);
  }
  if (!tasks.length || !Number.isFinite(t0)) {
    root.append(h('p', { class: 'muted' }, 'No spans yet.'));
    return;
  }
  const span = Math.max(t1 - t0, 1e-3);
  const X = (t) => LABEL_W + ((t - t0) / span) * PLOT_W;
  const now = Date.now() / 1000;
  const height = AXIS_H + tasks.length * ROW_H + 4;
  const svg = s('svg', {
    class: 'timeline', id: 'timeline', width: LABEL_W + PLOT_W + 20, height,
    viewBox: `0 0 ${LABEL_W + PLOT_W + 20} ${height}`, role: 'img', 'aria-label': 'trace timeline',
  });
  // Axis: five ticks.
  for (let i = 0; i <= 5; i += 1) {
    const x = LABEL_W + (PLOT_W * i) / 5;
    svg.append(s('line', { x1: x, x2: x, y1: AXIS_H - 6, y2: height, class: 'tick' }),
      s('text', { x, y: AXIS_H - 10, class: 'tick-label' }, fmtDuration((span * i) / 5)));
  }
  tasks.forEach((task, row) => {
    const y = AXIS_H + row * ROW_H;
    const onPath = critical.has(task.task_id);
    const g = s('a', { href: `#/tasks/${encodeURIComponent(task.task_id)}`, class: `trace-row${onPath ? ' critical' : ''}`, 'data-task-id': task.task_id });
    g.append(s('text', { x: 4, y: y + ROW_H - 5, class: 'row-label' }, (onPath ? '★ ' : '') + (task.node || task.task_id).slice(0, 24)));
    const end = task.end || now;
    g.append(s('rect', { x: X(task.start), y: y + 7, width: Math.max(1, X(end) - X(task.start)), height: 4, class: 'span-task' }));
    for (const c of children.get(task.task_id) || []) {
      const cEnd = c.end || now;
      const cls = c.kind === 'attempt' ? `span-attempt st-${c.status || 'DISPATCHED'}` : `span-${c.kind}`;
      g.append(s('rect', { x: X(c.start), y: y + 3, width: Math.max(1, X(cEnd) - X(c.start)), height: ROW_H - 6, class: cls },
        s('title', {}, `${c.kind}${c.attempt ? ` ${c.attempt}` : ''}${c.worker_id ? ` on ${c.worker_id}` : ''}: ${fmtDuration(c.duration_s ?? cEnd - c.start)}`)));
    }
    svg.append(g);
  });
  root.append(h('div', { class: 'legend' },
    h('span', { class: 'key span-queue' }), ' queued ', h('span', { class: 'key span-attempt' }), ' attempt ',
    h('span', { class: 'key span-reused' }), ' reused ', h('span', { class: 'key critical' }), ' ★ critical path'),
  h('div', { class: 'timeline-scroll' }, svg),
  h('h2', {}, 'Critical path'),
  table([
    { title: 'Task', cell: (t) => h('a', { href: `#/tasks/${encodeURIComponent(t.task_id)}` }, t.node || t.task_id) },
    { title: 'Queued', class: 'num', cell: (t) => fmtDuration(t.queue_s) },
    { title: 'Ran', class: 'num', cell: (t) => fmtDuration(t.run_s) },
    { title: 'Reused', cell: (t) => (t.reused ? 'yes' : '') },
  ], cp.tasks || [], { rowAttrs: () => ({ class: 'critical-row' }) }));
}
