// Sign in with an API key. The key is checked against the API (a 401 means it is wrong)
// and kept in sessionStorage for this tab only.
import { ApiError, api, clearApiKey, setApiKey } from '../api.js';
import { errorBox, h } from '../dom.js';
import { resetSession } from '../session.js';

export async function render(root, ctx) {
  const input = h('input', {
    id: 'api-key', type: 'password', name: 'api-key', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'fmk_…', required: true,
  });
  const message = h('div', { class: 'message' });
  if (ctx.query.reason === 'expired') message.append(errorBox('The server refused the key; sign in again.'));
  const form = h('form', { id: 'login-form', class: 'card narrow' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Paste an API key (', h('code', {}, 'flowmesh admin key create'),
      '). It stays in this tab only and is sent as a Bearer token to /api/v1.'),
    h('label', { for: 'api-key' }, 'API key'), input,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'login-submit' }, 'Sign in')),
    message);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.replaceChildren();
    const key = input.value.trim();
    if (!key) return;
    setApiKey(key);
    resetSession();
    try {
      // Any authenticated route tells a wrong key (401) from a narrow one (403).
      await api('/workflows?view=status&limit=1');
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 403) {
        clearApiKey();
        message.append(errorBox(error.status === 401 ? 'The server does not accept this key.' : error));
        return;
      }
    }
    const next = ctx.query.next && ctx.query.next !== '/login' ? ctx.query.next : '/workflows';
    ctx.navigate(next);
  });
  root.append(form);
  input.focus();
}
