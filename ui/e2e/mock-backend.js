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

// ---- terminal and files (issue #15) -------------------------------------------------------
const HOME = '/home/demo';
const nowSecs = () => Math.floor(Date.now() / 1000);
const enc = new TextEncoder();
const b64 = (text) => btoa(String.fromCharCode(...enc.encode(text)));
const f = (name, size, ageMin = 60, perms = '-rw-r--r--') => ({ name, kind: 'file', size, mtime: nowSecs() - ageMin * 60, mode: 0o100644, permissions: perms, linkTarget: null, targetKind: null });
const d = (name, ageMin = 60) => ({ name, kind: 'dir', size: 4096, mtime: nowSecs() - ageMin * 60, mode: 0o40755, permissions: 'drwxr-xr-x', linkTarget: null, targetKind: null });
const l = (name, target, targetKind) => ({ name, kind: 'symlink', size: target.length, mtime: nowSecs() - 300, mode: 0o120777, permissions: 'lrwxrwxrwx', linkTarget: target, targetKind });

/** A fake remote file system: absolute dir path -> entries. */
function makeFs() {
  return new Map([
    ['/', [d('etc', 9000), d('home', 9000), d('tmp', 5)]],
    ['/home', [d('work', 100)]],
    [HOME, [d('.cache', 500), d('.ssh', 900), d('data', 30), d('notebooks', 200), l('latest', 'data/run-42', 'dir'), l('stale-link', '/scratch/gone', null),
      { name: 'jupyter.sock', kind: 'other', size: 0, mtime: nowSecs() - 20, mode: 0o140755, permissions: 'srwxr-xr-x', linkTarget: null, targetKind: null },
      f('.bashrc', 3771, 9000), f('README.md', 2210, 45), f('results.csv', 5_382_113, 12), f('train.py', 18_944, 8, '-rwxr-xr-x')]],
    [`${HOME}/.cache`, []],
    [`${HOME}/.ssh`, [f('authorized_keys', 401, 900, '-rw-------')]],
    [`${HOME}/data`, [d('run-42', 30), f('train-00.parquet', 734_003_200, 120), f('train-01.parquet', 729_100_022, 118)]],
    [`${HOME}/data/run-42`, [f('metrics.json', 9_120, 30), f('model.pt', 1_304_221_712, 31)]],
    [`${HOME}/notebooks`, [f('eda.ipynb', 402_114, 200)]],
    ['/etc', [f('hostname', 13, 9000), f('os-release', 386, 9000)]],
    ['/tmp', []],
  ]);
}
const fsBySession = new Map();
const fsOf = (session) => {
  if (!fsBySession.has(session)) fsBySession.set(session, makeFs());
  return fsBySession.get(session);
};
const parentOf = (p) => (p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/')));
const baseOf = (p) => p.slice(p.lastIndexOf('/') + 1);
const joinP = (dir, name) => (dir === '/' ? `/${name}` : `${dir}/${name}`);
function sorted(entries) {
  return [...entries].sort((a, b) => (a.kind === 'dir') !== (b.kind === 'dir') ? (a.kind === 'dir' ? -1 : 1) : a.name.localeCompare(b.name));
}
function resolveDir(session, path) {
  const fs = fsOf(session);
  let p = path;
  // symlinks to dirs: `latest` -> data/run-42
  const parent = fs.get(parentOf(p));
  const link = parent?.find((e) => e.name === baseOf(p) && e.kind === 'symlink');
  if (link?.targetKind === 'dir') p = link.linkTarget.startsWith('/') ? link.linkTarget : joinP(parentOf(p), link.linkTarget);
  if (!fs.has(p)) throw err('FileNotFound', `no such folder in ${session}: ${path}`);
  return p;
}
function requireRunning(session) {
  requireLogin();
  const s = state.sessions.find((x) => x.name === session);
  if (!s) throw err('SessionNotFound', `no session named ${session}`);
  if (s.status !== 'RUNNING') throw err('SessionNotRunning', `session ${session} is not running`);
  if (!s.sshAvailable) throw err('AppNotFound', `session ${session} has no sshd service port`);
}

/** Open terminals: id -> { session, output, index, line }. */
const terminals = new Map();
let nextTerminal = 1;
function send(t, message) {
  window.__TAURI_INTERNALS__.runCallback(t.output.id, { index: t.index++, message });
}
const out = (t, text) => send(t, { kind: 'data', data: b64(text) });
const prompt = (t) => `\x1b]0;work@${t.session}: ~\x07\x1b[1;32mwork@${t.session}\x1b[0m:\x1b[1;34m~\x1b[0m$ `;
function runLine(t, line) {
  const cmd = line.trim();
  if (cmd === 'exit' || cmd.startsWith('exit ')) {
    const status = Number(cmd.split(/\s+/)[1] ?? 0);
    out(t, 'logout\r\n');
    send(t, { kind: 'exit', status, signal: null });
    send(t, { kind: 'closed', error: null });
    terminals.delete(t.id);
    return;
  }
  if (cmd === 'drop') {
    send(t, { kind: 'closed', error: { code: 'Network', message: 'the tunnel to sshd closed: websocket closed (1011)' } });
    terminals.delete(t.id);
    return;
  }
  if (cmd === 'ls') out(t, '\x1b[1;34mdata\x1b[0m  \x1b[1;34mnotebooks\x1b[0m  \x1b[1;36mlatest\x1b[0m  README.md  results.csv  \x1b[1;32mtrain.py\x1b[0m\r\n');
  else if (cmd.startsWith('echo ')) out(t, `${cmd.slice(5)}\r\n`);
  else if (cmd === 'nvidia-smi -L') out(t, 'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-5c3b…)\r\n');
  else if (cmd === 'utf8') out(t, 'héllo wörld — ✓ λ → ∑ — \x1b[38;5;208m256 colours\x1b[0m \x1b[38;2;120;200;255mtruecolor\x1b[0m\r\n');
  else if (cmd) out(t, `bash: ${cmd.split(' ')[0]}: command not found\r\n`);
  out(t, prompt(t));
}

/** Transfers: id -> TransferView (+ private fields). */
const transfers = new Map();
let nextTransfer = 1;
const MAX_RUNNING = 3;
/** Local files that exist already (downloads ask before replacing them). */
const LOCAL_FILES = new Set(['/home/demo/Downloads/results.csv']);
const view = (t) => ({ id: t.id, session: t.session, direction: t.direction, name: t.name, source: t.source, target: t.target, bytes: t.bytes, total: t.total, files: t.files, filesTotal: t.filesTotal, bytesPerSec: t.bytesPerSec, etaSecs: t.etaSecs, state: t.state, error: t.error });
function emitTransfer(t) {
  void window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event: 'transfers-changed', payload: view(t) });
}
function pumpTransfers() {
  const running = [...transfers.values()].filter((t) => t.state === 'running').length;
  let free = MAX_RUNNING - running;
  for (const t of transfers.values()) {
    if (free <= 0) break;
    if (t.state === 'queued') {
      t.state = 'running';
      free--;
      emitTransfer(t);
    }
  }
}
setInterval(() => {
  if (state.holdTransfers) return;
  for (const t of transfers.values()) {
    if (t.state !== 'running') continue;
    const step = Math.max(1, Math.round(t.total / (state.transferSteps ?? 10)));
    t.bytes = Math.min(t.total, t.bytes + step);
    t.bytesPerSec = step * 5;
    t.etaSecs = Math.ceil((t.total - t.bytes) / t.bytesPerSec);
    t.files = t.filesTotal ? Math.min(t.filesTotal, Math.floor((t.bytes / t.total) * t.filesTotal)) : t.files;
    if (t.bytes >= t.total) {
      t.state = 'done';
      t.files = t.filesTotal ?? 1;
      t.etaSecs = 0;
      if (t.direction === 'upload') {
        const fs = fsOf(t.session);
        const entries = fs.get(parentOf(t.target)) ?? [];
        const i = entries.findIndex((e) => e.name === t.name);
        const entry = t.folder ? d(t.name, 0) : f(t.name, t.total, 0);
        if (i >= 0) entries[i] = entry;
        else entries.push(entry);
        if (t.folder && !fs.has(t.target)) fs.set(t.target, [f('main.py', 2048, 0), f('requirements.txt', 120, 0)]);
        fs.set(parentOf(t.target), entries);
      } else {
        LOCAL_FILES.add(t.target);
      }
    }
    emitTransfer(t);
  }
  pumpTransfers();
}, 200);

/** The sizes of the fake local files the "dialog" picks or the desktop drops. */
const LOCAL_SIZES = { 'dataset.tar.gz': 48 * 1024 * 1024, 'project': 3 * 1024 * 1024, 'notes.txt': 12_288, 'plot.png': 412_000 };
function queue(session, direction, name, source, target, total, filesTotal, folder = false) {
  const t = { id: nextTransfer++, session, direction, name, source, target, bytes: 0, total, files: 0, filesTotal, bytesPerSec: 0, etaSecs: null, state: 'queued', error: null, folder };
  transfers.set(t.id, t);
  emitTransfer(t);
  pumpTransfers();
  return t.id;
}

Object.assign(handlers, {
  terminal_open: ({ session, cols, rows, output }) => {
    requireRunning(session);
    if (params.get('terminalFail') === '1') throw { code: 'HostKeyChanged', message: `the host key of ${session} changed since it was pinned`, hint: `bai forgets the old key with: ssh-keygen -R ${session} -f ~/.config/bai/known_hosts` };
    const t = { id: nextTerminal++, session, output, index: 0, line: '', cols, rows };
    terminals.set(t.id, t);
    setTimeout(() => {
      out(t, `Welcome to Backend.AI session ${session} (mock shell, ${cols}x${rows}).\r\nType \x1b[1mls\x1b[0m, \x1b[1mecho …\x1b[0m, \x1b[1mutf8\x1b[0m, \x1b[1mexit 3\x1b[0m or \x1b[1mdrop\x1b[0m.\r\n`);
      out(t, prompt(t));
    }, 30);
    return { id: t.id, session, user: 'work', title: `work@${session}` };
  },
  terminal_input: ({ id, data }) => {
    const t = terminals.get(id);
    if (!t) throw err('InvalidInput', `no terminal ${id}`);
    for (const ch of data) {
      if (ch === '\r') {
        out(t, '\r\n');
        const line = t.line;
        t.line = '';
        runLine(t, line);
        if (!terminals.has(id)) return null;
      } else if (ch === '\x7f') {
        if (t.line) {
          t.line = t.line.slice(0, -1);
          out(t, '\b \b');
        }
      } else if (ch >= ' ') {
        t.line += ch;
        out(t, ch);
      }
    }
    return null;
  },
  terminal_resize: ({ id, cols, rows }) => {
    const t = terminals.get(id);
    if (t) Object.assign(t, { cols, rows });
    return null;
  },
  terminal_close: ({ id }) => {
    terminals.delete(id);
    return null;
  },
  files_home: ({ session }) => {
    requireRunning(session);
    return HOME;
  },
  files_list: async ({ session, path }) => {
    requireRunning(session);
    await sleep(60);
    const p = resolveDir(session, path);
    return { path: p, entries: sorted(fsOf(session).get(p)) };
  },
  files_mkdir: ({ session, path }) => {
    requireRunning(session);
    const fs = fsOf(session);
    const entries = fs.get(parentOf(path));
    if (!entries) throw err('FileNotFound', `no such folder: ${parentOf(path)}`);
    if (entries.some((e) => e.name === baseOf(path))) throw { code: 'Exists', message: `${path} already exists` };
    entries.push(d(baseOf(path), 0));
    fs.set(path, []);
    return null;
  },
  files_rename: ({ session, from, to }) => {
    requireRunning(session);
    const fs = fsOf(session);
    const entries = fs.get(parentOf(from));
    const e = entries?.find((x) => x.name === baseOf(from));
    if (!e) throw err('FileNotFound', `no such file: ${from}`);
    if (fs.get(parentOf(to))?.some((x) => x.name === baseOf(to))) throw { code: 'Exists', message: `${to} already exists` };
    e.name = baseOf(to);
    if (fs.has(from)) {
      fs.set(to, fs.get(from));
      fs.delete(from);
    }
    return null;
  },
  files_delete: ({ session, path }) => {
    requireRunning(session);
    const fs = fsOf(session);
    const entries = fs.get(parentOf(path));
    const i = entries?.findIndex((x) => x.name === baseOf(path)) ?? -1;
    if (i < 0) throw err('FileNotFound', `no such file: ${path}`);
    entries.splice(i, 1);
    for (const k of [...fs.keys()]) if (k === path || k.startsWith(`${path}/`)) fs.delete(k);
    return null;
  },
  files_upload: async ({ session, remoteDir, localPaths, folder, overwrite }) => {
    requireRunning(session);
    await sleep(40);
    let paths = localPaths;
    if (paths === null) {
      if (params.get('cancelOpen') === '1') return [];
      paths = folder ? ['/home/demo/project'] : ['/home/demo/dataset.tar.gz'];
    }
    const entries = fsOf(session).get(remoteDir) ?? [];
    const clash = paths.map(baseOf).filter((n) => entries.some((e) => e.name === n));
    if (clash.length && !overwrite) throw { code: 'Exists', message: `${joinP(remoteDir, clash[0])} already exists in ${session}.`, hint: 'Replace it, or rename one of them first.' };
    return paths.map((p) => {
      const name = baseOf(p);
      const isDir = folder || !name.includes('.');
      return queue(session, 'upload', name, p, joinP(remoteDir, name), LOCAL_SIZES[name] ?? 256 * 1024, isDir ? 12 : 1, isDir);
    });
  },
  files_download: async ({ session, remotePaths, localDir, overwrite }) => {
    requireRunning(session);
    await sleep(40);
    if (localDir === null && params.get('cancelOpen') === '1') return [];
    const dir = localDir ?? '/home/demo/Downloads';
    const clash = remotePaths.map((p) => `${dir}/${baseOf(p)}`).filter((p) => LOCAL_FILES.has(p));
    if (clash.length && !overwrite) throw { code: 'Exists', message: `${clash[0]} already exists on this computer.` };
    const fs = fsOf(session);
    return remotePaths.map((p) => {
      const e = fs.get(parentOf(p))?.find((x) => x.name === baseOf(p));
      const isDir = e?.kind === 'dir';
      return queue(session, 'download', baseOf(p), p, `${dir}/${baseOf(p)}`, isDir ? 64 * 1024 * 1024 : Math.max(e?.size ?? 1, 1), isDir ? (fs.get(p)?.length ?? 1) : 1);
    });
  },
  transfer_cancel: ({ id }) => {
    const t = transfers.get(id);
    if (!t) throw err('InvalidInput', `no transfer ${id}`);
    if (t.state === 'queued' || t.state === 'running') {
      t.state = 'cancelled';
      t.bytesPerSec = 0;
      t.etaSecs = null;
      emitTransfer(t);
      pumpTransfers();
    }
    return null;
  },
  transfer_list: () => [...transfers.values()].map(view),
  transfer_clear: () => {
    for (const [id, t] of transfers) if (t.state !== 'queued' && t.state !== 'running') transfers.delete(id);
    return null;
  },
});

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
  /** Files dragged from the desktop and dropped on the window (Tauri's webview drag-drop events). */
  async drop(paths) {
    const emit = (event, payload) => window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event, payload });
    await emit('tauri://drag-enter', { paths, position: { x: 400, y: 400 } });
    await emit('tauri://drag-over', { position: { x: 410, y: 410 } });
    if (state.holdDrop) return;
    await emit('tauri://drag-drop', { paths, position: { x: 410, y: 410 } });
  },
  /** The terminal's visible text (xterm's DOM renderer rows). */
  terminalText(key) {
    const rows = document.querySelector(`[data-testid="terminal-${key}"] .xterm-rows`);
    return rows ? [...rows.children].map((r) => r.textContent.replace(/\u00a0/g, ' ').trimEnd()).join('\n') : null;
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
// getCurrentWebview() (drag and drop) reads the labels Tauri injects.
window.__TAURI_INTERNALS__.metadata = { currentWindow: { label: 'main' }, currentWebview: { windowLabel: 'main', label: 'main' } };
