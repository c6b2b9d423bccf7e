// The dashboard's entry: a hash router (#/workflows, #/workflows/ID, #/tasks/ID, …) that
// renders one view at a time into <main>. Each view gets an AbortSignal that fires when
// the user navigates away, so its requests, streams and timers stop with it.
import { api, apiKey, clearApiKey, setUnauthorizedHandler } from './api.js';
import { clear, errorBox } from './dom.js';
import { loadSession, resetSession } from './session.js';
import * as login from './views/login.js';
import * as workflows from './views/workflows.js';
import * as workflow from './views/workflow.js';
import * as task from './views/task.js';
import * as workers from './views/workers.js';
import * as usage from './views/usage.js';
import * as trace from './views/trace.js';

const routes = [
  { pattern: /^\/login$/, view: login, nav: '', open: true },
  { pattern: /^\/workflows$/, view: workflows, nav: 'workflows' },
  { pattern: /^\/workflows\/([^/]+)$/, view: workflow, nav: 'workflows', names: ['id'] },
  { pattern: /^\/workflows\/([^/]+)\/trace$/, view: trace, nav: 'workflows', names: ['id'] },
  { pattern: /^\/tasks\/([^/]+)$/, view: task, nav: 'workflows', names: ['id'] },
  { pattern: /^\/workers$/, view: workers, nav: 'workers' },
  { pattern: /^\/usage$/, view: usage, nav: 'usage' },
];

let current = null;  // {controller}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/workflows';
  const [path, q = ''] = raw.split('?');
  return { path, query: Object.fromEntries(new URLSearchParams(q)) };
}

export function navigate(path, query) {
  const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '' && v != null)).toString() : '';
  const target = `#${path}${q ? `?${q}` : ''}`;
  if (location.hash === target) render();
  else location.hash = target;
}

async function render() {
  if (current) current.controller.abort();
  const controller = new AbortController();
  current = { controller };
  const { path, query } = parseHash();
  const root = document.getElementById('view');
  let route = routes.find((r) => r.pattern.test(path));
  if (!route) {
    clear(root).append(errorBox(`No page ${path}`));
    return;
  }
  if (!route.open && !apiKey()) {
    navigate('/login', { next: path });
    return;
  }
  const match = path.match(route.pattern);
  const params = Object.fromEntries((route.names || []).map((n, i) => [n, decodeURIComponent(match[i + 1])]));
  const signedIn = Boolean(apiKey());
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('signout').hidden = !signedIn;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.nav === route.nav);
  try {
    // What the key may do is learned beside the view's own requests; views that need it
    // (admin-only filters and tables) await ctx.session.
    const ctx = { signal: controller.signal, params, query, navigate };
    const whoami = document.getElementById('whoami');
    if (signedIn) {
      ctx.session = loadSession();
      ctx.session.then((s) => { whoami.textContent = s.admin ? 'admin key' : 'signed in'; });
    } else {
      ctx.session = Promise.resolve({ admin: false, orgs: [] });
      whoami.textContent = '';
    }
    await route.view.render(clear(root), ctx);
  } catch (error) {
    if (controller.signal.aborted) return;
    clear(root).append(errorBox(error));
  }
}

function signOut() {
  clearApiKey();
  resetSession();
  navigate('/login');
}

setUnauthorizedHandler(() => {
  const { path } = parseHash();
  if (path === '/login') return;
  clearApiKey();
  resetSession();
  navigate('/login', { next: path, reason: 'expired' });
});

document.getElementById('signout').addEventListener('click', signOut);
window.addEventListener('hashchange', render);
render();
