// What the signed-in key may do, learned once per sign-in: an admin key lists
// organisations (and so may filter by them and see their quotas).
import { api } from './api.js';

let session = null;

export async function loadSession() {
  if (session) return session;
  const s = { admin: false, orgs: [] };
  try {
    s.orgs = await api('/admin/orgs');
    s.admin = true;
  } catch (_) {
    // 403: not an admin key; the views show what the key's scopes allow.
  }
  session = s;
  return s;
}

export function resetSession() {
  session = null;
}
