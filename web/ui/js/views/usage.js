// Usage per organisation (GET /usage: totals and per day, for a time window) and, for admin
// keys, each organisation's quotas (GET /admin/orgs) beside what it holds now (queued and
// running tasks, summed from the unfinished workflows).
import { api, query } from '../api.js';
import { errorBox, fmtDuration, h, table } from '../dom.js';

const money = (v) => (v === null || v === undefined ? '—' : Number(v).toFixed(4));

export async function render(root, ctx) {
  const q = ctx.query;
  const session = await ctx.session;
  if (ctx.signal.aborted) return;
  const from = h('input', { id: 'usage-from', type: 'date', value: q.from || '' });
  const to = h('input', { id: 'usage-to', type: 'date', value: q.to || '' });
  const org = session.admin && session.orgs.length > 1
    ? h('select', { id: 'usage-org' }, h('option', { value: 'all', selected: !q.org || q.org === 'all' }, 'every organisation'),
      session.orgs.map((o) => h('option', { value: o.org_id, selected: q.org === o.org_id }, o.name || o.org_id)))
    : null;
  const form = h('form', { class: 'filters' }, org && h('label', {}, 'Organisation ', org),
    h('label', {}, 'From ', from), h('label', {}, 'To ', to), h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.navigate('/usage', { org: org ? org.value : '', from: from.value, to: to.value });
  });
  const totals = h('div', { id: 'usage-totals' }, h('p', { class: 'muted' }, 'Loading…'));
  const days = h('div', { id: 'usage-days' });
  const quotas = h('div', { id: 'quotas' });
  root.append(h('h1', {}, 'Usage'), form, totals, h('h2', {}, 'Per day'), days);
  if (session.admin) root.append(h('h1', {}, 'Quotas'), quotas);

  const orgName = (id) => {
    const o = session.orgs.find((x) => x.org_id === id);
    return o && o.name ? `${o.name} (${id})` : id;
  };
  const sums = [
    { title: 'Attempts', class: 'num', cell: (r) => String(r.attempts) },
    { title: 'Run time', class: 'num', cell: (r) => fmtDuration(r.runtime_sec) },
    { title: 'Cost', class: 'num', cell: (r) => money(r.cost) },
    { title: 'Prompt tokens', class: 'num', cell: (r) => String(r.prompt_tokens) },
    { title: 'Completion tokens', class: 'num', cell: (r) => String(r.completion_tokens) },
  ];
  try {
    const orgParam = session.admin ? (q.org || (session.orgs.length > 1 ? 'all' : '')) : '';
    const report = await api(`/usage${query({ org: orgParam, from: q.from, to: q.to })}`, { signal: ctx.signal });
    totals.replaceChildren(table([{ title: 'Organisation', cell: (r) => orgName(r.org_id) }, ...sums],
      report.totals || [], { empty: 'No usage in this window.' }));
    days.replaceChildren(table([{ title: 'Day', cell: (r) => r.day }, { title: 'Organisation', cell: (r) => orgName(r.org_id) }, ...sums],
      report.per_day || [], { empty: 'No usage in this window.' }));
  } catch (error) {
    totals.replaceChildren(errorBox(error));
  }
  if (!session.admin) return;
  try {
    const [orgs, active] = await Promise.all([
      api('/admin/orgs', { signal: ctx.signal }),
      api('/workflows?view=status&status=PENDING&status=DISPATCHED', { signal: ctx.signal }),
    ]);
    const held = new Map();
    for (const w of active) {
      const c = held.get(w.org_id) || { queued: 0, running: 0 };
      c.queued += w.pending_count || 0;
      c.running += w.dispatched_count || 0;
      held.set(w.org_id, c);
    }
    const limit = (v) => (v ? String(v) : 'no limit');
    quotas.replaceChildren(table([
      { title: 'Organisation', cell: (o) => orgName(o.org_id) },
      { title: 'Weight', class: 'num', cell: (o) => String(o.policy.weight ?? 1) },
      { title: 'Queued / max', class: 'num', cell: (o) => `${(held.get(o.org_id) || {}).queued || 0} / ${limit(o.policy.max_queued_tasks)}` },
      { title: 'Running / max', class: 'num', cell: (o) => `${(held.get(o.org_id) || {}).running || 0} / ${limit(o.policy.max_running_tasks)}` },
      { title: 'Max GPUs', class: 'num', cell: (o) => limit(o.policy.max_gpus) },
      { title: 'Max request', class: 'num', cell: (o) => limit(o.policy.max_request_bytes) },
      { title: 'Max collections', class: 'num', cell: (o) => limit(o.policy.max_collection_bytes) },
    ], orgs, { rowAttrs: (o) => ({ dataset: { orgId: o.org_id } }) }));
  } catch (error) {
    quotas.replaceChildren(errorBox(error));
  }
}
