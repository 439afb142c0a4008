// The crm-users admin console: a client of the resource API and nothing else. It signs in
// through REMP's users/login, keeps the admin's access token in sessionStorage (gone when the
// tab closes) and sends it as a Bearer token; whatever the admin's roles do not grant, the API
// refuses, and the page says so. Pages are built with DOM calls (never innerHTML with data).

const TOKEN_KEY = 'crm-users-admin-token';
const EMAIL_KEY = 'crm-users-admin-email';
const PER_PAGE = 20;

const $ = (id) => document.getElementById(id);
const main = () => $('main');

// ---- DOM helpers -------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function table(columns, rows, empty = 'None.') {
  if (!rows.length) return el('p', { class: 'muted' }, empty);
  return el('table', {},
    el('thead', {}, el('tr', {}, columns.map(([title]) => el('th', {}, title)))),
    el('tbody', {}, rows.map((row) => el('tr', {}, columns.map(([, cell]) => {
      const v = cell(row);
      return el('td', {}, v === null || v === undefined ? '' : v);
    })))));
}

function panel(title, ...content) {
  return el('section', { class: 'panel', 'data-panel': title }, el('h2', {}, title), ...content);
}

function flash(message, isError = false) {
  const f = $('flash');
  f.textContent = message;
  f.className = isError ? 'error' : '';
}

const date = (s) => (s ? s.replace('T', ' ').replace(/([+-]\d\d:\d\d|Z)$/, '') : '');
const yesNo = (b, yes = 'yes', no = 'no') => el('span', { class: b ? 'tag ok' : 'tag bad' }, b ? yes : no);

// ---- API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.code)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => null);
  if (res.status === 401 && path !== '/api/v1/users/login') {
    signOut('Your session has ended; sign in again.');
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/// A panel's body that loads itself; a refusal (403 names the missing permission) shows in place.
function loading(load) {
  const box = el('div', {}, el('p', { class: 'muted' }, 'Loading…'));
  Promise.resolve()
    .then(load)
    .then((content) => box.replaceChildren(content))
    .catch((e) => {
      if (e.status === 401) return;
      const prefix = e.status === 403 ? 'Not permitted: ' : 'Failed: ';
      box.replaceChildren(el('p', { class: 'error' }, prefix + e.message));
    });
  return box;
}

async function act(label, fn) {
  try {
    await fn();
    flash(label);
    await render();
  } catch (e) {
    if (e.status !== 401) flash(`${e.status === 403 ? 'Not permitted' : 'Failed'}: ${e.message}`, true);
  }
}

// ---- Sign-in -------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const error = $('sign-in-error');
  error.textContent = '';
  const params = new URLSearchParams({ email: form.email.value, password: form.password.value, source: 'admin-console' });
  const res = await fetch('/api/v1/users/login', { method: 'POST', body: params });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access) {
    error.textContent = body.message || 'Sign-in failed.';
    return;
  }
  const token = body.access.token;
  const me = await fetch('/api/me', { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.json());
  if (me.role !== 'admin') {
    await fetch('/api/v1/users/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    error.textContent = 'This account is not an administrator; the console is for admin users only.';
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(EMAIL_KEY, me.email);
  form.reset();
  if (!location.hash || location.hash === '#') location.hash = '#/';
  await render();
}

function signOut(message) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EMAIL_KEY);
  if (token && !message) {
    fetch('/api/v1/users/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  flash(message || '');
  showSignIn();
}

function showSignIn() {
  $('bar').hidden = true;
  $('sign-in').hidden = false;
  main().replaceChildren();
}

// ---- Pages ---------------------------------------------------------------------------------

async function dashboard() {
  const s = await api('GET', '/api/stats/new-users?days=31');
  const card = (label, value, id) => el('div', { class: 'card', id }, el('div', { class: 'value' }, value), el('div', { class: 'label' }, label));
  return el('div', {},
    el('h1', {}, 'Dashboard'),
    el('div', { class: 'cards' },
      card('New users today', s.today, 'stat-today'),
      card('This month', s.this_month, 'stat-month'),
      card('Last month to date', s.last_month_to_date, 'stat-last-month')),
    panel(`New users per day (${s.timezone})`, barChart(s.per_day)));
}

function barChart(days) {
  const w = 760, h = 220, left = 34, bottom = 30, top = 10;
  const max = Math.max(1, ...days.map((d) => d.count));
  const slot = (w - left) / days.length;
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': 'New users per day' });
  const y = (v) => h - bottom - ((h - bottom - top) * v) / max;
  for (const v of [0, max]) {
    chart.append(svg('text', { x: 2, y: y(v) + 3 }, v));
    chart.append(svg('line', { x1: left, x2: w, y1: y(v), y2: y(v), stroke: '#d8dde5' }));
  }
  days.forEach((d, i) => {
    const x = left + i * slot + 1;
    const bar = svg('rect', { class: 'bar', x, y: y(d.count), width: Math.max(1, slot - 2), height: h - bottom - y(d.count), 'data-date': d.date, 'data-count': d.count });
    bar.append(svg('title', {}, `${d.date}: ${d.count}`));
    chart.append(bar);
    if (i % Math.ceil(days.length / 8) === 0 || i === days.length - 1) {
      chart.append(svg('text', { x, y: h - bottom + 14 }, d.date.slice(5)));
    }
  });
  return chart;
}

async function users(params) {
  const q = params.get('q') || '';
  const page = Math.max(1, Number(params.get('page')) || 1);
  const query = new URLSearchParams({ page, per_page: PER_PAGE, order: 'id|desc' });
  if (q) query.set('q', q);
  const list = await api('GET', `/api/users?${query}`);
  const go = (p) => `#/users?${new URLSearchParams({ q, page: p })}`;
  const search = el('form', { class: 'inline', id: 'user-search', onsubmit: (e) => {
    e.preventDefault();
    location.hash = `#/users?${new URLSearchParams({ q: e.target.q.value, page: 1 })}`;
  } },
  el('input', { name: 'q', type: 'search', value: q, placeholder: 'email, name or external id', 'aria-label': 'Search users' }),
  el('button', { type: 'submit' }, 'Search'));
  return el('div', {},
    el('h1', {}, 'Users'),
    search,
    /^\d+$/.test(q.trim()) ? el('p', {}, el('a', { href: `#/users/${q.trim()}`, id: 'by-id' }, `Open user #${q.trim()}`)) : null,
    table([
      ['ID', (u) => u.id],
      ['Email', (u) => el('a', { href: `#/users/${u.id}` }, u.email)],
      ['Name', (u) => [u.first_name, u.last_name].filter(Boolean).join(' ')],
      ['Role', (u) => u.role],
      ['Active', (u) => yesNo(u.active)],
      ['Confirmed', (u) => date(u.confirmed_at)],
      ['Created', (u) => date(u.created_at)],
    ], list.data, 'No user matches.'),
    el('div', { class: 'pager' },
      page > 1 ? el('a', { href: go(page - 1), id: 'prev-page' }, '← Previous') : null,
      el('span', { class: 'muted', id: 'page-info' }, `Page ${list.page} of ${Math.max(1, list.total_pages)} · ${list.total} users`),
      page < list.total_pages ? el('a', { href: go(page + 1), id: 'next-page' }, 'Next →') : null));
}

async function userDetail(id) {
  const u = await api('GET', `/api/users/${id}`);
  const base = `/api/users/${id}`;
  const field = (k, v) => [el('dt', {}, k), el('dd', {}, v ?? '')];
  return el('div', {},
    el('h1', {}, u.email),
    panel('Account', el('dl', { class: 'fields' },
      field('ID', u.id), field('UUID', u.uuid), field('Name', [u.first_name, u.last_name].filter(Boolean).join(' ')),
      field('Public name', u.public_name), field('Role', u.role), field('Active', yesNo(u.active)),
      field('Confirmed', date(u.confirmed_at)), field('Email validated', date(u.email_validated_at)),
      field('Created', date(u.created_at)), field('Modified', date(u.modified_at)),
      field('Locale', u.locale), field('Timezone', u.timezone), field('Source', u.source),
      field('External id', u.ext_id), field('Note', u.note))),
    panel('Addresses', loading(async () => {
      const { data } = await api('GET', `${base}/addresses`);
      return table([
        ['Type', (a) => a.type_title ? `${a.type_title} (${a.type})` : a.type],
        ['Address', (a) => a.address_string],
        ['Updated', (a) => date(a.updated_at)],
      ], data, 'No addresses.');
    })),
    panel('Address change requests', loading(async () => {
      const { data } = await api('GET', `${base}/address-change-requests`);
      return table([
        ['ID', (r) => r.id],
        ['Type', (r) => r.type],
        ['Requested', (r) => [r.first_name, r.last_name, r.street, r.number, r.zip, r.city, r.country_iso].filter(Boolean).join(', ')],
        ['Status', (r) => r.status],
        ['Created', (r) => date(r.created_at)],
        ['', (r) => r.status === 'new' ? [
          el('button', { type: 'button', 'data-accept': r.id, onclick: () => act(`Change request ${r.id} accepted.`, () => api('POST', `/api/address-change-requests/${r.id}/accept`)) }, 'Accept'), ' ',
          el('button', { type: 'button', class: 'danger', 'data-reject': r.id, onclick: () => act(`Change request ${r.id} rejected.`, () => api('POST', `/api/address-change-requests/${r.id}/reject`)) }, 'Reject'),
        ] : ''],
      ], data, 'No change requests.');
    })),
    panel('Access and device tokens', loading(async () => {
      const { data } = await api('GET', `${base}/access-tokens`);
      return table([
        ['ID', (t) => t.id],
        ['Source', (t) => t.source],
        ['Signed in by', (t) => t.method],
        ['IP', (t) => t.ip],
        ['User agent', (t) => t.user_agent],
        ['Created', (t) => date(t.created_at)],
        ['Last used', (t) => date(t.last_used_at)],
        ['Device', (t) => t.device ? `${t.device.device_id} (device token ${t.device.id})` : ''],
        ['', (t) => [
          el('button', { type: 'button', class: 'danger', 'data-revoke-token': t.id, onclick: () => confirm(`Revoke access token ${t.id}?`) && act(`Access token ${t.id} revoked.`, () => api('DELETE', `${base}/access-tokens/${t.id}`)) }, 'Revoke'),
          t.device ? [' ', el('button', { type: 'button', class: 'danger', 'data-revoke-device': t.device.id, onclick: () => confirm(`Sign device ${t.device.device_id} out?`) && act(`Device ${t.device.device_id} signed out.`, () => api('DELETE', `${base}/device-tokens/${t.device.id}`)) }, 'Sign device out')] : '',
        ]],
      ], data, 'No access tokens.');
    })),
    panel('Autologin tokens', loading(async () => {
      const { data } = await api('GET', `${base}/autologin-tokens`);
      return table([
        ['ID', (t) => t.id],
        ['Valid from', (t) => date(t.valid_from)],
        ['Valid to', (t) => date(t.valid_to)],
        ['Used', (t) => `${t.used_count} / ${t.max_count}`],
        ['', (t) => el('button', { type: 'button', class: 'danger', onclick: () => confirm(`Revoke autologin token ${t.id}?`) && act(`Autologin token ${t.id} revoked.`, () => api('DELETE', `${base}/autologin-tokens/${t.id}`)) }, 'Revoke')],
      ], data, 'No autologin tokens.');
    })),
    panel('Login attempts', loading(async () => {
      const { data } = await api('GET', `${base}/login-attempts?limit=50`);
      return table([
        ['When', (a) => date(a.created_at)],
        ['Status', (a) => el('span', { class: a.ok ? 'tag ok' : 'tag bad' }, a.status)],
        ['Source', (a) => a.source],
        ['IP', (a) => a.ip],
        ['User agent', (a) => a.user_agent],
        ['Message', (a) => a.message],
      ], data, 'No login attempts.');
    })),
    panel('Password changes', loading(async () => {
      const { data } = await api('GET', `${base}/password-changes`);
      return table([['When', (c) => date(c.created_at)], ['Type', (c) => c.type]], data, 'No password changes.');
    })),
    panel('Meta', loading(async () => {
      const { data } = await api('GET', `${base}/meta`);
      return table([
        ['Key', (m) => m.key], ['Value', (m) => m.value], ['Public', (m) => yesNo(m.is_public)], ['Updated', (m) => date(m.updated_at)],
      ], data, 'No meta.');
    })),
    panel('Groups', loading(async () => {
      const [{ groups }, all] = await Promise.all([api('GET', `${base}/groups`), api('GET', '/api/groups')]);
      const member = new Set(groups.map((g) => g.id));
      const others = all.groups.filter((g) => !member.has(g.id));
      return el('div', {},
        table([
          ['Group', (g) => g.name],
          ['', (g) => el('button', { type: 'button', class: 'secondary', onclick: () => act(`Removed from ${g.name}.`, () => api('DELETE', `/api/groups/${g.id}/members/${id}`)) }, 'Remove')],
        ], groups, 'In no group.'),
        others.length ? el('form', { class: 'inline', onsubmit: (e) => {
          e.preventDefault();
          const gid = Number(e.target.group.value);
          act('Added to the group.', () => api('POST', `/api/groups/${gid}/members`, { user_id: Number(id) }));
        } }, el('select', { name: 'group', 'aria-label': 'Group' }, others.map((g) => el('option', { value: g.id }, g.name))),
        el('button', { type: 'submit' }, 'Add to group')) : null);
    })));
}

async function groups() {
  const { groups: list } = await api('GET', '/api/groups');
  return el('div', {},
    el('h1', {}, 'Groups'),
    table([['ID', (g) => g.id], ['Name', (g) => g.name], ['Sorting', (g) => g.sorting], ['Members', (g) => g.member_count],
      ['', (g) => el('button', { type: 'button', class: 'danger', onclick: () => confirm(`Delete group ${g.name} and its memberships?`) && act(`Group ${g.name} deleted.`, () => api('DELETE', `/api/groups/${g.id}`)) }, 'Delete')]],
    list, 'No groups.'),
    el('form', { class: 'inline', onsubmit: (e) => {
      e.preventDefault();
      act('Group created.', () => api('POST', '/api/groups', { name: e.target.name.value }));
    } }, el('input', { name: 'name', required: true, placeholder: 'New group name', 'aria-label': 'Group name' }), el('button', { type: 'submit' }, 'Create group')));
}

async function addressTypes() {
  const { address_types: list } = await api('GET', '/api/address-types');
  return el('div', {},
    el('h1', {}, 'Address types'),
    table([['Type', (t) => t.type], ['Title', (t) => t.title], ['Sorting', (t) => t.sorting], ['Source', (t) => t.source], ['Plugin', (t) => t.plugin]], list, 'No address types.'),
    el('form', { class: 'inline', onsubmit: (e) => {
      e.preventDefault();
      const f = e.target;
      act('Address type stored.', () => api('POST', '/api/address-types', { type: f.type.value, title: f.title.value }));
    } },
    el('input', { name: 'type', required: true, placeholder: 'type (a-z, 0-9, -, _)', 'aria-label': 'Type' }),
    el('input', { name: 'title', required: true, placeholder: 'Title', 'aria-label': 'Title' }),
    el('button', { type: 'submit' }, 'Add address type')));
}

async function apiTokens() {
  const { data } = await api('GET', '/api/api-tokens');
  const shown = el('div', { id: 'new-token' });
  const create = el('form', { class: 'inline', id: 'create-token', onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target;
    const routes = f.routes.value.trim() === '*' ? '*' : f.routes.value.split(',').map((r) => r.trim()).filter(Boolean);
    try {
      const t = await api('POST', '/api/api-tokens', { name: f.name.value, allowed_routes: routes });
      await render();
      flash(`API token ${t.name} created.`);
      $('new-token').replaceChildren(el('p', {}, 'Copy the token now; it is shown only once: ', el('span', { class: 'secret', id: 'new-token-value' }, t.token)));
    } catch (err) {
      if (err.status !== 401) flash(`Failed: ${err.message}`, true);
    }
  } },
  el('input', { name: 'name', required: true, placeholder: 'Name', 'aria-label': 'Token name' }),
  el('input', { name: 'routes', required: true, placeholder: 'users/create,users/list or *', size: 40, 'aria-label': 'Allowed routes' }),
  el('button', { type: 'submit' }, 'Create API token'));
  return el('div', {},
    el('h1', {}, 'API tokens'),
    table([['ID', (t) => t.id], ['Name', (t) => t.name], ['Routes', (t) => t.allowed_routes.join(', ')], ['Active', (t) => yesNo(t.active)], ['Created', (t) => date(t.created_at)],
      ['', (t) => t.active ? el('button', { type: 'button', class: 'danger', onclick: () => confirm(`Revoke API token ${t.name}?`) && act(`API token ${t.name} revoked.`, () => api('DELETE', `/api/api-tokens/${t.id}`)) }, 'Revoke') : '']],
    data, 'No API tokens.'),
    create, shown);
}

async function plugins() {
  const { plugins: list } = await api('GET', '/api/plugins');
  return el('div', {},
    el('h1', {}, 'Plugins'),
    table([['Name', (p) => p.name], ['Version', (p) => p.version], ['Kind', (p) => p.kinds.join(', ')], ['Priority', (p) => p.priority],
      ['State', (p) => yesNo(p.state === 'active', 'active', p.state)], ['Calls', (p) => p.calls], ['Failures', (p) => p.failures],
      ['Fuel', (p) => p.fuel_consumed], ['Last error', (p) => p.last_error]], list, 'No plugins loaded.'),
    el('button', { type: 'button', id: 'reload-plugins', onclick: () => act('Plugins reloaded.', () => api('POST', '/api/plugins/reload')) }, 'Reload plugins'));
}

// ---- Routing -------------------------------------------------------------------------------

const ROUTES = [
  [/^#?\/?$/, () => dashboard()],
  [/^#\/users\/(\d+)$/, (m) => userDetail(m[1])],
  [/^#\/users$/, (m, params) => users(params)],
  [/^#\/groups$/, () => groups()],
  [/^#\/address-types$/, () => addressTypes()],
  [/^#\/api-tokens$/, () => apiTokens()],
  [/^#\/plugins$/, () => plugins()],
];

let rendering = 0;

async function render() {
  if (!sessionStorage.getItem(TOKEN_KEY)) return showSignIn();
  $('sign-in').hidden = true;
  $('bar').hidden = false;
  $('who').textContent = sessionStorage.getItem(EMAIL_KEY) || '';
  const [path, query] = location.hash.split('?');
  const params = new URLSearchParams(query || '');
  for (const a of document.querySelectorAll('header nav a')) {
    const target = a.getAttribute('href');
    a.classList.toggle('current', target === '#/' ? path === '#/' || path === '' : path.startsWith(target));
  }
  const ticket = ++rendering;
  const route = ROUTES.find(([re]) => re.test(path));
  let page;
  try {
    page = route ? await route[1](path.match(route[0]), params) : el('p', {}, 'No such page.');
  } catch (e) {
    if (e.status === 401) return;
    page = el('p', { class: 'error' }, `${e.status === 403 ? 'Not permitted' : 'Failed'}: ${e.message}`);
  }
  if (ticket === rendering) main().replaceChildren(page);
}

window.addEventListener('hashchange', () => {
  flash('');
  render();
});
$('sign-in-form').addEventListener('submit', (e) => signIn(e).catch((err) => { $('sign-in-error').textContent = `Sign-in failed: ${err.message}`; }));
$('sign-out').addEventListener('click', () => signOut());
render();
