// One workflow: its task graph (layered SVG) with live task status. Status comes from the
// workflow's event stream (GET /workflows/{id}/logs/stream, SSE): every task event carries
// the task's new status. The stream is opened at the cursor read *before* the task list, so
// no change between the two is missed (a change seen twice is harmless).
import { api, followSse } from '../api.js';
import { badge, errorBox, fmtTime, h } from '../dom.js';
import { drawDag, layout, setNodeStatus } from '../dag.js';

const STATES = ['PENDING', 'DISPATCHED', 'CANCELLING', 'DONE', 'FAILED', 'CANCELLED'];
const MAX_CURSOR = '9007199254740991';

export async function render(root, ctx) {
  const id = ctx.params.id;
  const enc = encodeURIComponent(id);
  const { signal } = ctx;
  // The newest event's cursor first, then the tasks (see above).
  const newest = await api(`/workflows/${enc}/logs?before=${MAX_CURSOR}&limit=1`, { signal });
  const cursor = (newest.entries || []).reduce((m, e) => (Number(e.cursor) > Number(m) ? e.cursor : m), '0');
  const [wf, tasks] = await Promise.all([
    api(`/workflows/${enc}?view=status`, { signal }),
    api(`/tasks?workflow_id=${enc}&view=status`, { signal }),
  ]);

  const status = new Map(tasks.map((t) => [t.task_id, t.status]));
  const labels = new Map(tasks.map((t) => [t.task_id, t.graph_node_name || t.task_name || t.task_id]));
  const wfStatus = h('span', { id: 'wf-status' }, badge(wf.status));
  const counts = h('span', { class: 'counts', id: 'wf-counts' });
  const live = h('span', { class: 'muted', id: 'wf-live' }, 'connecting…');
  const terminal = ['DONE', 'FAILED', 'CANCELLED'];
  const message = h('div', { class: 'message' });
  const cancel = h('button', {
    type: 'button', id: 'wf-cancel', hidden: terminal.includes(wf.status),
    onclick: async () => {
      message.replaceChildren();
      try {
        await api(`/workflows/${enc}/cancel`, { method: 'POST', signal });
      } catch (error) {
        message.append(errorBox(error));
      }
    },
  }, 'Cancel workflow');
  root.append(
    h('div', { class: 'row' },
      h('h1', {}, wf.name || id), wfStatus, h('span', { class: 'spacer' }), cancel,
      h('a', { href: `#/workflows/${enc}/trace`, id: 'trace-link' }, 'Trace timeline')),
    message,
    h('p', { class: 'muted mono' }, id, ' · submitted ', fmtTime(wf.submitted_ts),
      wf.org_id ? ` · ${wf.org_id}` : '', ' · ', live),
    h('div', { class: 'row' }, counts, h('span', { class: 'spacer' }), zoomControls()),
  );

  // Layout and draw; the page marks when the SVG holds every node (bench/run.sh ui reads it).
  const nodes = tasks.map((t) => ({
    id: t.task_id, deps: t.depends_on || [], label: labels.get(t.task_id), status: t.status,
    href: `#/tasks/${encodeURIComponent(t.task_id)}`,
  }));
  const t0 = performance.now();
  const pos = layout(nodes);
  const t1 = performance.now();
  const { svg, elements } = drawDag(nodes, pos);
  const scroller = h('div', { class: 'dag-scroll', id: 'dag-scroll' }, svg);
  root.append(scroller);
  const t2 = performance.now();
  svg.dataset.nodes = String(nodes.length);
  svg.dataset.layoutMs = (t1 - t0).toFixed(1);
  svg.dataset.drawMs = (t2 - t1).toFixed(1);
  performance.mark('fm-dag-inserted');
  // After the next frame the browser has laid out and painted the graph.
  requestAnimationFrame(() => setTimeout(() => {
    performance.mark('fm-dag-rendered');
    document.body.dataset.dagRenderedMs = performance.now().toFixed(1);
    svg.dataset.rendered = 'true';
  }, 0));

  const renderCounts = () => {
    const c = Object.fromEntries(STATES.map((st) => [st, 0]));
    for (const st of status.values()) c[st] = (c[st] || 0) + 1;
    counts.replaceChildren(...STATES.filter((st) => c[st]).map((st) =>
      h('span', { class: 'count', dataset: { status: st } }, badge(st), ` ${c[st]}`)));
  };
  renderCounts();

  // Live updates: coalesce per animation frame; refresh the workflow's own status (derived
  // by the server) at most once a second.
  const changed = new Set();
  let frame = 0;
  let statusTimer = 0;
  const refreshWorkflow = async () => {
    statusTimer = 0;
    try {
      const w = await api(`/workflows/${enc}?view=status`, { signal });
      wfStatus.replaceChildren(badge(w.status));
      cancel.hidden = terminal.includes(w.status);
    } catch (_) {
      // Transient; the next event retries.
    }
  };
  const flush = () => {
    frame = 0;
    for (const taskId of changed) {
      const el = elements.get(taskId);
      if (el) setNodeStatus(el, labels.get(taskId), status.get(taskId));
    }
    changed.clear();
    renderCounts();
    if (!statusTimer) statusTimer = setTimeout(refreshWorkflow, 1000);
  };
  signal.addEventListener('abort', () => {
    if (frame) cancelAnimationFrame(frame);
    clearTimeout(statusTimer);
  }, { once: true });

  if (terminal.includes(wf.status) && tasks.every((t) => terminal.includes(t.status))) {
    live.textContent = 'finished';
    return;
  }
  live.textContent = 'live';
  followSse(`/workflows/${enc}/logs/stream`, {
    cursor: cursor === '0' ? '' : cursor,
    signal,
    onOpen: () => { live.textContent = 'live'; },
    onError: (error) => { live.replaceChildren(errorBox(error)); },
    onEvent: (frameEvent) => {
      if (frameEvent.event === 'eos') {
        live.textContent = 'finished';
        if (!statusTimer) statusTimer = setTimeout(refreshWorkflow, 0);
        return;
      }
      if (frameEvent.event !== 'log') return;
      let ev;
      try {
        ev = JSON.parse(frameEvent.data);
      } catch (_) {
        return;
      }
      if (!ev.task_id || !ev.status || !status.has(ev.task_id)) return;
      if (status.get(ev.task_id) === ev.status) return;
      status.set(ev.task_id, ev.status);
      changed.add(ev.task_id);
      if (!frame) frame = requestAnimationFrame(flush);
    },
  }).then(() => {
    if (!signal.aborted && live.textContent === 'live') live.textContent = 'stream ended';
  });
}

function zoomControls() {
  const set = (factor) => {
    const svg = document.getElementById('dag');
    if (!svg) return;
    const [, , w, hgt] = svg.getAttribute('viewBox').split(' ').map(Number);
    const scroller = document.getElementById('dag-scroll');
    let scale = factor;
    if (factor === 'fit') scale = Math.min(1, (scroller.clientWidth - 4) / w, (scroller.clientHeight - 4) / hgt);
    else scale = Math.max(0.05, Math.min(4, Number(svg.dataset.scale || 1) * factor));
    svg.dataset.scale = String(scale);
    svg.setAttribute('width', String(w * scale));
    svg.setAttribute('height', String(hgt * scale));
  };
  return h('span', { class: 'zoom' },
    h('button', { type: 'button', title: 'zoom out', onclick: () => set(0.8) }, '−'),
    h('button', { type: 'button', title: 'zoom in', onclick: () => set(1.25) }, '+'),
    h('button', { type: 'button', title: 'fit', onclick: () => set('fit') }, 'Fit'));
}
