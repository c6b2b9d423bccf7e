// One task: its record, live logs (GET /tasks/{id}/logs/stream, SSE), attempts and output
// files (the workflow's lineage trace), and its result (GET /results/{id}).
import { ApiError, api, download, followSse } from '../api.js';
import { badge, errorBox, fmtBytes, fmtDuration, fmtTime, h, jsonBlock, table } from '../dom.js';

const TERMINAL = ['DONE', 'FAILED', 'CANCELLED'];
const MAX_LOG_LINES = 5000;

export async function render(root, ctx) {
  const id = ctx.params.id;
  const enc = encodeURIComponent(id);
  const { signal } = ctx;
  const task = await api(`/tasks/${enc}`, { signal });
  const wfEnc = encodeURIComponent(task.workflow_id);

  const header = h('div', {});
  const attempts = h('section', { id: 'task-attempts' }, h('h2', {}, 'Attempts'), h('p', { class: 'muted' }, 'Loading…'));
  const files = h('section', { id: 'task-files' }, h('h2', {}, 'Files'));
  const result = h('section', { id: 'task-result' }, h('h2', {}, 'Result'));
  const logState = h('span', { class: 'muted', id: 'log-state' }, 'connecting…');
  const logs = h('div', { class: 'logs', id: 'task-logs', role: 'log' });
  root.append(header,
    h('section', {}, h('div', { class: 'row' }, h('h2', {}, 'Logs'), logState), logs),
    attempts, files, result);

  const drawHeader = (t) => {
    const deps = (t.depends_on || []).map((d) => h('a', { href: `#/tasks/${encodeURIComponent(d)}` }, d));
    header.replaceChildren(
      h('div', { class: 'row' }, h('h1', {}, t.graph_node_name || t.task_id),
        h('span', { id: 'task-status' }, badge(t.status)), h('span', { class: 'spacer' }),
        t.status === 'DISPATCHED' ? h('button', { type: 'button', id: 'task-stop', onclick: () => stop(t) }, 'Stop') : null),
      h('dl', { class: 'facts' },
        fact('Task', h('span', { class: 'mono' }, t.task_id)),
        fact('Workflow', h('a', { href: `#/workflows/${wfEnc}` }, t.workflow_id)),
        fact('Type', t.task_type), fact('Worker', t.assigned_worker || '—'),
        fact('Attempts', `${t.attempts} of ${t.max_attempts}`),
        fact('Submitted', fmtTime(t.submitted_ts)), fact('Started', fmtTime(t.started_ts)),
        fact('Finished', fmtTime(t.finished_ts)),
        t.error || t.last_error ? fact('Error', h('span', { class: 'error-text' }, t.error || t.last_error)) : null,
        deps.length ? fact('Depends on', deps.flatMap((a, i) => (i ? [', ', a] : [a]))) : null));
  };
  const stop = async (t) => {
    try {
      await api(`/tasks/${encodeURIComponent(t.task_id)}/stop`, { method: 'POST', signal });
    } catch (error) {
      header.append(errorBox(error));
    }
  };
  drawHeader(task);

  const loadDetails = async () => {
    const t = await api(`/tasks/${enc}`, { signal });
    drawHeader(t);
    await Promise.all([loadLineage(t), loadResult(t)]);
  };
  const loadLineage = async (t) => {
    let row = null;
    try {
      const lineage = await api(`/traces/workflows/${wfEnc}/lineage`, { signal });
      row = lineage.find((l) => l.task_id === t.task_id) || null;
    } catch (error) {
      attempts.replaceChildren(h('h2', {}, 'Attempts'), errorBox(error));
      return;
    }
    const list = row ? row.attempts : [];
    const usage = new Map((t.usages || []).map((u) => [u.attempt, u]));
    attempts.replaceChildren(h('h2', {}, 'Attempts'), table([
      { title: '#', class: 'num', cell: (a) => String(a.attempt) },
      { title: 'Worker', class: 'mono', cell: (a) => a.worker_id || '—' },
      { title: 'Status', cell: (a) => badge(a.status || 'RUNNING') },
      { title: 'Dispatched', cell: (a) => fmtTime(a.dispatched_at) },
      { title: 'Ran', cell: (a) => (a.ended_at && a.dispatched_at ? fmtDuration(a.ended_at - a.dispatched_at) : '—') },
      { title: 'Cost', class: 'num', cell: (a) => (usage.get(a.attempt) ? String(usage.get(a.attempt).cost ?? '—') : '—') },
      { title: 'Error', cell: (a) => a.error || '' },
    ], list, { empty: row && row.reused ? 'Reused a stored result: nothing ran.' : 'No attempt yet.' }));
    const out = row && row.outputs ? row.outputs.files || [] : [];
    files.replaceChildren(h('h2', {}, 'Files'), table([
      { title: 'Path', class: 'mono', cell: (f) => f.path },
      { title: 'Size', class: 'num', cell: (f) => fmtBytes(f.size) },
      { title: '', cell: (f) => h('button', { type: 'button', onclick: () => download(`/results/${enc}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`, f.path.split('/').pop()).catch((e) => files.append(errorBox(e))) }, 'Download') },
    ], out, { empty: 'No files.' }));
  };
  const loadResult = async (t) => {
    try {
      const r = await api(`/results/${enc}`, { signal });
      result.replaceChildren(h('h2', {}, 'Result'), jsonBlock(r),
        TERMINAL.includes(t.status)
          ? h('button', { type: 'button', onclick: () => download(`/results/${enc}/bundle?include=all`, `${t.task_id}.tar.gz`).catch((e) => result.append(errorBox(e))) }, 'Download bundle')
          : null);
    } catch (error) {
      result.replaceChildren(h('h2', {}, 'Result'),
        error instanceof ApiError && error.status === 404 ? h('p', { class: 'muted' }, 'No result yet.') : errorBox(error));
    }
  };
  await loadDetails().catch((error) => { if (!signal.aborted) root.append(errorBox(error)); });

  // Logs: the whole backlog, then live until the task ends (eos).
  let lines = 0;
  let pending = [];
  let frame = 0;
  const flush = () => {
    frame = 0;
    const stick = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 8;
    logs.append(...pending);
    lines += pending.length;
    pending = [];
    while (lines > MAX_LOG_LINES && logs.firstChild) {
      logs.firstChild.remove();
      lines -= 1;
    }
    if (stick) logs.scrollTop = logs.scrollHeight;
  };
  signal.addEventListener('abort', () => frame && cancelAnimationFrame(frame), { once: true });
  followSse(`/tasks/${enc}/logs/stream`, {
    signal,
    onOpen: () => { logState.textContent = 'live'; },
    onError: (error) => { logState.replaceChildren(errorBox(error)); },
    onEvent: (f) => {
      if (f.event === 'eos') {
        logState.textContent = 'ended';
        loadDetails().catch(() => {});
        return;
      }
      if (f.event !== 'log') return;
      let ev;
      try {
        ev = JSON.parse(f.data);
      } catch (_) {
        return;
      }
      const isLine = ev.type === 'TASK_LOG';
      pending.push(h('div', { class: `line ${isLine ? `stream-${ev.stream || 'stdout'}` : 'system'} level-${(ev.level || 'INFO').toLowerCase()}` },
        h('span', { class: 'ts' }, fmtTime(ev.ts_epoch || ev.ts)), ' ', ev.message || ''));
      if (!isLine && ev.status) {
        document.getElementById('task-status')?.replaceChildren(badge(ev.status));
      }
      if (!frame) frame = requestAnimationFrame(flush);
    },
  });
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}
