// Workers and nodes (GET /workers, GET /nodes): status, slots, loaded models and free
// decode (sequence) slots, refreshed every few seconds while shown.
import { api } from '../api.js';
import { badge, errorBox, fmtBytes, fmtTime, h, table } from '../dom.js';

const REFRESH_MS = 5000;

// The published WorkerInfo hardware: {cpu: {logical_cores}, memory: {total_bytes},
// gpu: {devices: [{name, memory_total_bytes}]}}.
function hardwareSummary(w) {
  const hw = w.hardware && typeof w.hardware === 'object' ? w.hardware : {};
  const parts = [];
  if (hw.cpu && hw.cpu.logical_cores) parts.push(`${hw.cpu.logical_cores} CPU`);
  if (hw.memory && hw.memory.total_bytes) parts.push(fmtBytes(hw.memory.total_bytes));
  const gpus = (hw.gpu && hw.gpu.devices) || [];
  if (gpus.length) parts.push(`${gpus.length} GPU (${gpus.map((g) => g.name || g.index).join(', ')})`);
  if (w.cost_per_hour !== null && w.cost_per_hour !== undefined) parts.push(`${w.cost_per_hour}/h`);
  return parts.join(' · ') || '—';
}

export async function render(root, ctx) {
  const workersBox = h('div', { id: 'worker-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const nodesBox = h('div', { id: 'node-list' });
  const updated = h('span', { class: 'muted' });
  root.append(h('div', { class: 'row' }, h('h1', {}, 'Workers'), h('span', { class: 'spacer' }), updated),
    workersBox, h('h1', {}, 'Nodes'), nodesBox);

  const load = async () => {
    const [workers, nodes] = await Promise.all([
      api('/workers', { signal: ctx.signal }),
      api('/nodes', { signal: ctx.signal }).catch((error) => error),
    ]);
    workersBox.replaceChildren(table([
      { title: 'Worker', cell: (w) => h('span', {}, h('strong', {}, w.alias || w.id), h('br'), h('span', { class: 'mono muted' }, w.worker_id || w.id)) },
      { title: 'Node', cell: (w) => w.node_alias || w.node_id || '—' },
      { title: 'Status', cell: (w) => [badge(w.status), w.cordoned ? h('span', { class: 'badge st-CORDONED' }, 'CORDONED') : null, w.stale ? h('span', { class: 'badge st-STALE' }, 'STALE') : null] },
      { title: 'Slots free', class: 'num', cell: (w) => `${w.free_slots ?? '—'} / ${w.slots ?? '—'}` },
      { title: 'Running', class: 'num', cell: (w) => String((w.running_tasks || []).length) },
      { title: 'Free decode slots', class: 'num', cell: (w) => (w.free_sequence_slots ?? '—').toString() },
      { title: 'Loaded models', cell: (w) => ((w.loaded_models || []).length ? (w.loaded_models || []).map((m) => h('div', { class: 'mono' }, m)) : '—') },
      { title: 'Task types', cell: (w) => (w.task_types || (w.capabilities || {}).supported_task_types || []).join(', ') },
      { title: 'Hardware', cell: (w) => hardwareSummary(w) },
      { title: 'Last seen', cell: (w) => fmtTime(w.last_seen_ts || w.last_seen) },
    ], workers, { empty: 'No workers registered.', rowAttrs: (w) => ({ class: 'worker-row', dataset: { workerId: w.worker_id || w.id, status: w.status } }) }));
    if (nodes instanceof Error) {
      nodesBox.replaceChildren(errorBox(nodes));
    } else {
      const perNode = new Map();
      for (const w of workers) perNode.set(w.node_id, (perNode.get(w.node_id) || 0) + (w.status !== 'DOWN' ? 1 : 0));
      nodesBox.replaceChildren(table([
        { title: 'Node', cell: (n) => h('span', {}, h('strong', {}, n.alias || n.id), h('br'), h('span', { class: 'mono muted' }, n.id)) },
        { title: 'Workers up', class: 'num', cell: (n) => String(perNode.get(n.id) || 0) },
        { title: 'Tags', cell: (n) => (Array.isArray(n.tags) ? n.tags.join(', ') : JSON.stringify(n.tags || {})) },
        { title: 'Started', cell: (n) => fmtTime(n.started_at) },
        { title: 'Last seen', cell: (n) => fmtTime(n.last_seen) },
      ], nodes, { empty: 'No nodes registered.', rowAttrs: (n) => ({ class: 'node-row', dataset: { nodeId: n.id } }) }));
    }
    updated.textContent = `updated ${fmtTime(Date.now() / 1000)}`;
  };
  const tick = async () => {
    try {
      await load();
    } catch (error) {
      if (ctx.signal.aborted) return;
      workersBox.replaceChildren(errorBox(error));
    }
    if (!ctx.signal.aborted) {
      const timer = setTimeout(tick, REFRESH_MS);
      ctx.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }
  };
  await tick();
}
