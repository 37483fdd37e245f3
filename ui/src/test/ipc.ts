/** Test helper: mock the Tauri IPC with a per-command handler table and record every call. */
import { mockIPC } from '@tauri-apps/api/mocks';
import type { Session, TunnelInfo, TunnelStatus } from '../lib/api';

export type Handler = (args: Record<string, unknown>) => unknown;
export interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

export function installIpc(handlers: Record<string, Handler | object | string | number | boolean | null>) {
  const calls: Call[] = [];
  mockIPC(
    (cmd, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args });
      if (!(cmd in handlers)) throw { code: 'Unknown', message: `unmocked command ${cmd}` };
      const h = handlers[cmd];
      return typeof h === 'function' ? (h as Handler)(args) : h;
    },
    { shouldMockEvents: true },
  );
  return calls;
}

/** A rejection in the shape the Rust side serializes. */
export function fail(code: string, message: string): never {
  throw { code, message };
}

export const SESSIONS: Session[] = [
  {
    id: 's-1',
    name: 'train-gpu',
    status: 'RUNNING',
    image: 'cr.backend.ai/stable/python-pytorch:2.3-py312-cuda12.4',
    createdAt: new Date(Date.now() - 3 * 3600_000).toISOString(),
    sshAvailable: true,
    apps: [
      { name: 'sshd', protocol: 'tcp' },
      { name: 'jupyter', protocol: 'http' },
      { name: 'redis', protocol: 'tcp' },
    ],
  },
  {
    id: 's-2',
    name: 'notebook',
    status: 'PENDING',
    statusInfo: 'waiting for resources',
    image: 'cr.backend.ai/stable/python:3.12',
    createdAt: new Date(Date.now() - 60_000).toISOString(),
    sshAvailable: false,
    sshReason: 'The session is not running yet.',
    apps: [],
  },
  {
    id: 's-3',
    name: 'web-only',
    status: 'RUNNING',
    image: 'cr.backend.ai/stable/nginx:latest',
    createdAt: new Date(Date.now() - 86400_000).toISOString(),
    sshAvailable: false,
    sshReason: 'The image has no sshd service port.',
    apps: [{ name: 'ttyd', protocol: 'http' }],
  },
];

export function tunnel(over: Partial<TunnelInfo> = {}): TunnelInfo {
  const port = over.port ?? 10022;
  return {
    session: 'train-gpu',
    port,
    preferredPort: null,
    fallback: null,
    user: 'work',
    host: '127.0.0.1',
    sftpUrl: `sftp://work@127.0.0.1:${port}`,
    keyPath: null,
    hasIdContainer: true,
    keyProblem: null,
    keyStale: null,
    ownKey: null,
    commands: {
      ssh: `ssh -i ./id_container -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p ${port} work@127.0.0.1`,
      sftp: `sftp -i ./id_container -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -P ${port} work@127.0.0.1`,
      scp: `scp -i ./id_container -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -P ${port} -rp /path/to/source work@127.0.0.1:~/`,
      rsync: `rsync -av -e "ssh -i ./id_container -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p ${port}" /path/to/source/ work@127.0.0.1:~/`,
    },
    vscodeConfig: `Host bai-train-gpu\n  HostName 127.0.0.1\n  Port ${port}\n  User work\n  IdentityFile ./id_container\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null`,
    vscodeUrl: `vscode://vscode-remote/ssh-remote+bai-train-gpu/home/work`,
    ...over,
  };
}

export function tunnelStatus(over: Partial<TunnelStatus> = {}): TunnelStatus {
  return {
    session: 'train-gpu',
    app: 'sshd',
    protocol: 'tcp',
    url: null,
    port: 10022,
    active: 2,
    total: 5,
    bytesUp: 1536,
    bytesDown: 5 * 1024 * 1024,
    since: new Date(Date.now() - 10 * 60_000).toISOString(),
    lastError: null,
    ...over,
  };
}
