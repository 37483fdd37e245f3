// In-page fake of the Rust backend for the Playwright suite, over mockIPC.
// Loaded before the app's bundle (see server.mjs). Every call is recorded in
// window.__ipcCalls; window.__e2e exposes knobs for the tests.
import { mockIPC } from './mocks.js';

const params = new URLSearchParams(location.search);
const DEMO = { endpoint: 'http://127.0.0.1:8090', email: 'demo@lablup.com', password: 'demo-pass', otp: '123456' };
const TAKEN_PORTS = new Set([10022]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const err = (code, message) => ({ code, message });
const minutesAgo = (m) => new Date(Date.now() - m * 60_000).toISOString();

const state = {
  loggedIn: params.get('restored') === '1',
  settings: { preferredSshPort: null, refreshSeconds: 30, account: 'work', pinHostKeys: false, restoreTunnels: true, keepInTray: true, startAtLogin: false },
  sessions: [
    { id: 'a1b2c3d4-0001', name: 'train-gpu', status: 'RUNNING', image: 'cr.backend.ai/stable/python-pytorch:2.3-py312-cuda12.4', createdAt: minutesAgo(190), sshAvailable: true, apps: [{ name: 'sshd', protocol: 'tcp' }, { name: 'jupyter', protocol: 'http' }, { name: 'tensorboard', protocol: 'http' }] },
    { id: 'a1b2c3d4-0002', name: 'eda-notebook', status: 'RUNNING', image: 'cr.backend.ai/stable/python:3.12-ubuntu22.04', createdAt: minutesAgo(35), sshAvailable: true, apps: [{ name: 'sshd', protocol: 'tcp' }, { name: 'jupyterlab', protocol: 'http' }] },
    { id: 'a1b2c3d4-0003', name: 'batch-job', status: 'PENDING', statusInfo: 'waiting for GPU resources', image: 'cr.backend.ai/stable/python-tensorflow:2.16-py312-cuda12.3', createdAt: minutesAgo(2), sshAvailable: false, sshReason: 'The session is pending; SSH needs a running session.', apps: [] },
    { id: 'a1b2c3d4-0004', name: 'web-demo', status: 'RUNNING', image: 'cr.backend.ai/community/nginx:1.27', createdAt: minutesAgo(60 * 26), sshAvailable: false, sshReason: 'The image has no sshd service port.', apps: [{ name: 'nginx', protocol: 'http' }] },
    { id: 'a1b2c3d4-0005', name: 'old-run', status: 'ERROR', statusInfo: 'agent lost', image: 'cr.backend.ai/stable/python:3.11', createdAt: minutesAgo(60 * 24 * 4), sshAvailable: false, sshReason: 'The session failed (agent lost).', apps: [] },
  ],
  /** session name -> { info, status } */
  tunnels: new Map(),
  recent: [{ endpoint: 'https://backend.example.com', mode: 'session', user: 'demo@example.com' }],
  /** The account's SSH keypair (public half), or null. */
  keypair: null,
  nextRandomPort: 41234,
};

function commands(port, key, account, hasIdContainer = true) {
  // Without id_container the user's own default identity is used: no -i at all.
  const id = key ? `-i ${key} ` : hasIdContainer ? '-i ./id_container ' : '';
  const opts = '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null';
  return {
    ssh: `ssh ${id}${opts} -p ${port} ${account}@127.0.0.1`,
    sftp: `sftp ${id}${opts} -P ${port} ${account}@127.0.0.1`,
    scp: `scp ${id}${opts} -P ${port} -rp /path/to/source ${account}@127.0.0.1:~/`,
    rsync: `rsync -av -e "ssh ${id}${opts} -p ${port}" /path/to/source/ ${account}@127.0.0.1:~/`,
  };
}

function makeInfo(session, port, preferred, fallback, account) {
  const hasIdContainer = session !== 'eda-notebook';
  return {
    session,
    port,
    preferredPort: preferred,
    fallback,
    user: account,
    host: '127.0.0.1',
    sftpUrl: `sftp://${account}@127.0.0.1:${port}`,
    keyPath: null,
    hasIdContainer,
    keyProblem: null,
    keyStale: null,
    ownKey: null,
    commands: commands(port, null, account, hasIdContainer),
    vscodeConfig: `Host bai-${session}\n  HostName 127.0.0.1\n  Port ${port}\n  User ${account}\n${hasIdContainer ? '  IdentityFile ./id_container\n' : ''}  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null`,
    vscodeUrl: `vscode://vscode-remote/ssh-remote+bai-${session}/home/${account}`,
  };
}

function emitTunnelsChanged() {
  void window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event: 'tunnels-changed', payload: null });
}

function requireLogin() {
  if (!state.loggedIn) throw err('LoginRequired', 'not logged in');
}

const handlers = {
  app_info: () => ({ version: '0.1.0-e2e', sandbox: { webserver: DEMO.endpoint, email: DEMO.email } }),
  restore_login: () => (state.loggedIn ? { endpoint: DEMO.endpoint, mode: 'session', user: DEMO.email, role: 'user' } : null),
  login: async (a) => {
    await sleep(150);
    if (!/^https?:\/\//.test(a.endpoint)) throw err('BadUrl', `invalid URL: ${a.endpoint}`);
    if (a.endpoint.replace(/\/$/, '') !== DEMO.endpoint) throw err('Unreachable', `could not connect to ${a.endpoint}: connection refused`);
    if (a.mode === 'session') {
      if (a.email !== DEMO.email || a.password !== DEMO.password) throw err('AuthFailed', 'Login failed: invalid email or password');
      if (!a.otp) throw err('TotpRequired', 'OTP required');
      if (a.otp !== DEMO.otp) throw err('TotpRequired', 'Invalid OTP');
    } else if (a.accessKey !== 'AKIAIOSFODNN7EXAMPLE') {
      throw err('AuthFailed', 'invalid access key');
    }
    state.loggedIn = true;
    return { endpoint: DEMO.endpoint, mode: a.mode, user: a.mode === 'session' ? DEMO.email : a.accessKey, role: 'user' };
  },
  logout: () => {
    state.loggedIn = false;
    state.tunnels.clear();
    return null;
  },
  list_sessions: async () => {
    requireLogin();
    await sleep(120);
    return state.sessions;
  },
  get_settings: () => ({ ...state.settings }),
  set_settings: ({ settings }) => {
    const p = settings.preferredSshPort;
    if (p !== null && (!Number.isInteger(p) || p < 1025 || p > 65534)) throw err('InvalidInput', `preferred port ${p} must be 1025-65534`);
    state.settings = { ...settings };
    return { ...state.settings };
  },
  open_ssh: async ({ session, account }) => {
    requireLogin();
    const existing = state.tunnels.get(session);
    if (existing) return existing.info;
    const s = state.sessions.find((x) => x.name === session);
    if (!s) throw err('SessionNotFound', `no session named ${session}`);
    if (!s.sshAvailable) throw err('AppNotFound', `session ${session} has no sshd service port`);
    await sleep(Number(params.get('sshDelay') ?? 1600));
    const preferred = state.settings.preferredSshPort;
    const used = new Set([...TAKEN_PORTS, ...[...state.tunnels.values()].map((t) => t.info.port)]);
    let port;
    let fallback = null;
    if (preferred !== null && !used.has(preferred)) port = preferred;
    else {
      port = state.nextRandomPort++;
      if (preferred !== null) fallback = { preferred, reason: `127.0.0.1:${preferred} is already in use (os error 98)` };
    }
    const info = makeInfo(session, port, preferred, fallback, account ?? state.settings.account);
    state.tunnels.set(session, {
      info,
      status: { session, app: 'sshd', protocol: 'tcp', url: null, port, active: 0, total: 0, bytesUp: 0, bytesDown: 0, since: new Date().toISOString(), lastError: null },
    });
    emitTunnelsChanged();
    return info;
  },
  tunnel_info: ({ session }) => {
    const t = state.tunnels.get(session);
    if (!t) throw err('SessionNotFound', `no tunnel for ${session}`);
    return t.info;
  },
  save_key: ({ session, format }) => {
    const t = state.tunnels.get(session);
    if (!t) throw err('SessionNotFound', `no tunnel for ${session}`);
    if (params.get('cancelSave') === '1') return null;
    const path = format === 'ppk' ? `/home/demo/${session}.ppk` : `/home/demo/.ssh/id_container-${session}`;
    if (format === 'openssh') {
      t.info = { ...t.info, keyPath: path, commands: commands(t.info.port, path, t.info.user), vscodeConfig: t.info.vscodeConfig.replace('./id_container', path) };
    }
    return { path };
  },
  account_keypair: () => {
    requireLogin();
    return state.keypair;
  },
  generate_keypair: () => {
    requireLogin();
    state.keypair = { publicKey: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDgeneratedE2E', fingerprint: 'SHA256:g3nErAtEdK3yF1ngErPr1nTf0rE2Et3sTs0nLyAbCdE' };
    return state.keypair;
  },
  upload_keypair: () => {
    requireLogin();
    if (params.get('cancelOpen') === '1') return null;
    state.keypair = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUploadedE2E me@laptop', fingerprint: 'SHA256:upL0adEdK3yF1ngErPr1nTf0rE2Et3sTs0nLyAbCdEf' };
    return state.keypair;
  },
  use_own_key: ({ session }) => {
    const t = state.tunnels.get(session);
    if (!t) throw err('SessionNotFound', `no tunnel for ${session}`);
    if (params.get('cancelOpen') === '1') return null;
    const path = '/home/demo/.ssh/id_ed25519';
    t.info = { ...t.info, ownKey: path, commands: commands(t.info.port, path, t.info.user), vscodeConfig: t.info.vscodeConfig.replace('  StrictHostKeyChecking', `  IdentityFile ${path}\n  StrictHostKeyChecking`) };
    return t.info;
  },
  // Nothing recorded at a previous quit in the mock: no banner.
  restore_tunnels: () => ({ reopened: [], dropped: [] }),
  list_tunnels: () => [...state.tunnels.values()].map((t) => ({ ...t.status })),
  stop_tunnel: ({ session }) => {
    if (!state.tunnels.delete(session)) throw err('SessionNotFound', `no tunnel for ${session}`);
    emitTunnelsChanged();
    return null;
  },
  recent_servers: () => state.recent,
  forget_recent_server: ({ server }) => {
    state.recent = state.recent.filter((r) => !(r.endpoint === server.endpoint && r.mode === server.mode && r.user === server.user));
    return state.recent;
  },
  about: () => ({
    version: '0.1.0',
    commit: '0123456789ab',
    server: state.loggedIn ? { endpoint: 'https://backend.example.com', mode: 'session', apiVersion: 'v9.20250722', managerVersion: '26.8.0', error: null } : null,
    logDir: '/home/demo/.local/share/ai.bai.desktop/logs',
  }),
  open_log_folder: () => null,
  open_app: ({ session, name }) => {
    requireLogin();
    const s = state.sessions.find((x) => x.name === session);
    const a = s?.apps.find((x) => x.name === name);
    if (!a) throw err('AppNotFound', `session ${session} has no app ${name}`);
    const port = state.nextRandomPort++;
    const url = a.protocol === 'http' ? `http://127.0.0.1:${port}/` : null;
    return { session, app: name, protocol: a.protocol, host: '127.0.0.1', port, url };
  },
  'plugin:clipboard-manager|write_text': () => null,
  'plugin:opener|open_url': () => null,
};

window.__ipcCalls = [];
window.__e2e = {
  state,
  /** Simulate traffic on a tunnel (as if ssh clients connected). */
  traffic(session, { active = 1, total = 1, up = 0, down = 0, lastError = null } = {}) {
    const t = state.tunnels.get(session);
    if (!t) return false;
    Object.assign(t.status, { active, total, bytesUp: t.status.bytesUp + up, bytesDown: t.status.bytesDown + down, lastError });
    emitTunnelsChanged();
    return true;
  },
};

mockIPC(
  async (cmd, args) => {
    window.__ipcCalls.push({ cmd, args: JSON.parse(JSON.stringify(args ?? {})) });
    const h = handlers[cmd];
    if (!h) throw err('Unknown', `unknown command ${cmd}`);
    return h(args ?? {});
  },
  { shouldMockEvents: true },
);
