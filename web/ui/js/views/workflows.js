// Workflows: the list (filtered by status, organisation for admins, and submission time)
// and a form to submit a workflow document. The list refreshes every few seconds while
// shown (there is no event stream of all workflows).
import { api, query } from '../api.js';
import { badge, errorBox, fmtTime, h, table } from '../dom.js';

const STATUSES = ['', 'PENDING', 'DISPATCHED', 'DONE', 'FAILED', 'CANCELLED'];
const SINCE = [['', 'any time'], ['3600', 'last hour'], ['86400', 'last 24 hours'], ['604800', 'last 7 days']];
const REFRESH_MS = 5000;

const EXAMPLE = `apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: hello-diamond}
spec:
  taskType: echo
  graph:
    nodes:
      - name: a
        spec: {data: {type: list, items: ["start"]}}
      - name: b
        dependsOn: [a]
        spec: {data: {type: list, items: ["left"]}}
      - name: c
        dependsOn: [a]
        spec: {data: {type: list, items: ["right"]}}
      - name: d
        dependsOn: [b, c]
        spec: {data: {type: list, items: ["joined"]}}
`;

export async function render(root, ctx) {
  const q = ctx.query;
  const session = await ctx.session;
  if (ctx.signal.aborted) return;
  const select = (id, options, value) => h('select', { id, name: id },
    options.map(([v, label]) => h('option', { value: v, selected: v === (value || '') }, label)));
  const status = select('filter-status', STATUSES.map((v) => [v, v || 'any status']), q.status);
  const since = select('filter-since', SINCE, q.since);
  const limit = h('input', { id: 'filter-limit', type: 'number', min: 1, max: 10000, value: q.limit || '200' });
  const org = session.admin && session.orgs.length > 1
    ? select('filter-org', [['', 'every organisation'], ...session.orgs.map((o) => [o.org_id, o.name || o.org_id])], q.org)
    : null;
  const filters = h('form', { class: 'filters', id: 'workflow-filters' },
    h('label', {}, 'Status ', status), org && h('label', {}, 'Organisation ', org),
    h('label', {}, 'Submitted ', since), h('label', {}, 'Newest ', limit),
    h('button', { type: 'submit' }, 'Apply'));
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.navigate('/workflows', {
      status: status.value, since: since.value, org: org ? org.value : '', limit: limit.value,
    });
  });
  for (const el of [status, since, org].filter(Boolean)) el.addEventListener('change', () => filters.requestSubmit());

  const list = h('div', { id: 'workflow-list' }, h('p', { class: 'muted' }, 'Loading…'));
  root.append(
    h('div', { class: 'row' }, h('h1', {}, 'Workflows'), h('span', { class: 'spacer' }),
      h('span', { class: 'muted', id: 'list-updated' })),
    filters, list, submitForm(ctx));

  const load = async () => {
    const rows = await api(`/workflows${query({
      view: 'status', status: q.status, org_id: q.org, limit: q.limit || 200,
    })}`, { signal: ctx.signal });
    const cutoff = q.since ? Date.now() / 1000 - Number(q.since) : 0;
    const shown = rows.filter((w) => !cutoff || (w.submitted_ts || 0) >= cutoff).reverse();
    list.replaceChildren(table([
      { title: 'Workflow', cell: (w) => h('a', { href: `#/workflows/${encodeURIComponent(w.workflow_id)}`, class: 'wf-link' }, w.name || w.workflow_id) },
      { title: 'Id', class: 'mono', cell: (w) => w.workflow_id },
      { title: 'Status', cell: (w) => badge(w.status) },
      { title: 'Tasks', class: 'num', cell: (w) => `${w.completed_count}/${w.task_count}${w.failed_count ? ` (${w.failed_count} failed)` : ''}` },
      session.admin ? { title: 'Organisation', class: 'mono', cell: (w) => orgName(session, w.org_id) } : null,
      { title: 'Submitted', cell: (w) => fmtTime(w.submitted_ts) },
      { title: 'Updated', cell: (w) => fmtTime(w.updated_ts || w.submitted_ts) },
    ].filter(Boolean), shown, { empty: 'No workflows match.', rowAttrs: (w) => ({ dataset: { workflowId: w.workflow_id, status: w.status } }) }));
    document.getElementById('list-updated').textContent = `updated ${fmtTime(Date.now() / 1000)}`;
  };
  const tick = async () => {
    try {
      await load();
    } catch (error) {
      if (ctx.signal.aborted) return;
      list.replaceChildren(errorBox(error));
    }
    if (!ctx.signal.aborted) {
      const timer = setTimeout(tick, REFRESH_MS);
      ctx.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }
  };
  await tick();
}

function orgName(session, orgId) {
  const o = session.orgs.find((x) => x.org_id === orgId);
  return o && o.name ? `${o.name} (${orgId})` : orgId || '—';
}

function submitForm(ctx) {
  const text = h('textarea', { id: 'submit-text', rows: 12, spellcheck: 'false' });
  text.value = EXAMPLE;
  const format = h('select', { id: 'submit-format' },
    h('option', { value: '' }, 'flowmesh/v1 (YAML or JSON)'), h('option', { value: 'n8n' }, 'n8n export'));
  const message = h('div', { class: 'message', id: 'submit-message' });
  const form = h('form', { id: 'submit-form', class: 'card' },
    h('h2', {}, 'Submit a workflow'),
    h('label', { for: 'submit-text' }, 'Document'), text,
    h('div', { class: 'actions' }, h('label', {}, 'Format ', format),
      h('button', { type: 'button', id: 'validate-button' }, 'Validate'),
      h('button', { type: 'submit', id: 'submit-button' }, 'Submit')),
    message);
  const send = async (path) => api(`${path}${query({ format: format.value })}`, {
    method: 'POST', body: text.value, contentType: 'text/plain', signal: ctx.signal,
  });
  const problems = (error) => {
    const box = h('div', { class: 'error', role: 'alert' }, error.detail || error.message);
    return box;
  };
  form.querySelector('#validate-button').addEventListener('click', async () => {
    message.replaceChildren();
    try {
      const r = await send('/workflows/validate');
      message.append(h('div', { class: 'ok' }, `Valid: ${r.count} task(s).`,
        (r.warnings || []).map((w) => h('div', { class: 'muted' }, `${w.path} ${w.line}:${w.column} ${w.message}`))));
    } catch (error) {
      message.append(problems(error));
    }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    message.replaceChildren();
    try {
      const r = await send('/workflows');
      ctx.navigate(`/workflows/${encodeURIComponent(r.workflow_id)}`);
    } catch (error) {
      message.append(problems(error));
    }
  });
  return form;
}
