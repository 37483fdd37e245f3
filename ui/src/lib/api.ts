/**
 * The one typed wrapper around Tauri's `invoke()`.
 *
 * Every command the UI calls is listed here with its argument and result
 * types; the Rust side (src-tauri/src/commands) implements exactly these.
 * Argument objects are passed as the invoke payload, so each key is a
 * top-level command parameter (Tauri maps `accessKey` to `access_key`).
 * Errors always reject with an {@link ApiError} (`{code, message}`).
 */
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

/** Error codes the Rust side serializes in `{code, message}`. */
export const ERROR_CODES = [
  'AuthFailed',
  'TotpRequired',
  'BadUrl',
  'Unreachable',
  'Tls',
  'UnsupportedVersion',
  'LoginExpired',
  'SessionNotFound',
  'AppNotFound',
  'PortInUse',
  'InvalidInput',
  'Network',
  'Unknown',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** A rejected command: `code` to branch on, `message` from the server/backend to show. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
  }
}

/** Normalises whatever `invoke` rejected with into an {@link ApiError}. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e && typeof e === 'object' && 'code' in e) {
    const { code, message } = e as { code: unknown; message?: unknown };
    const known = (ERROR_CODES as readonly unknown[]).includes(code) ? (code as ErrorCode) : 'Unknown';
    return new ApiError(known, typeof message === 'string' ? message : String(message ?? code));
  }
  if (typeof e === 'string') return new ApiError('Unknown', e);
  if (e instanceof Error) return new ApiError('Unknown', e.message);
  return new ApiError('Unknown', String(e));
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toApiError(e);
  }
}

// ---- types -----------------------------------------------------------------

export interface AppInfo {
  version: string;
  /** The demo sandbox server, when `make run` started one. */
  sandbox: { webserver: string; email: string } | null;
}

export type LoginMode = 'session' | 'api';

export interface LoginRequest {
  endpoint: string;
  mode: LoginMode;
  email?: string;
  password?: string;
  accessKey?: string;
  secretKey?: string;
  otp?: string;
  remember: boolean;
}

/** How the connection to the server is protected (the profile's TLS settings). */
export interface TlsState {
  scheme: 'http' | 'https' | string;
  /** Certificate verification is off (`bai login --insecure`). */
  insecure: boolean;
  /** An extra CA file is trusted (`bai login --ca-file`). */
  caFile?: string | null;
  /** Plain http to another machine: why that is dangerous. */
  warning?: string | null;
}

export interface LoginState {
  endpoint: string;
  mode: LoginMode;
  user: string;
  role?: string;
  tls?: TlsState;
}

export interface Session {
  id: string;
  name: string;
  status: string;
  statusInfo?: string;
  image: string;
  /** ISO 8601 */
  createdAt: string;
  sshAvailable: boolean;
  /** Why SSH is not available (tooltip). */
  sshReason?: string;
}

export interface Settings {
  /** null = random port */
  preferredSshPort: number | null;
  /** 0 = auto-refresh off */
  refreshSeconds: number;
  /** Account inside the container; default "work". */
  account: string;
  /** Copied commands pin the session's host key (bai's known_hosts, accept-new). */
  pinHostKeys?: boolean;
}

export interface TunnelInfo {
  session: string;
  port: number;
  preferredPort: number | null;
  /** Set when the preferred port was taken and another one was assigned. */
  fallback: null | { preferred: number; reason: string };
  user: string;
  host: string;
  sftpUrl: string;
  /** Where the key was saved, once saved. */
  keyPath: string | null;
  hasIdContainer: boolean;
  commands: { ssh: string; sftp: string; scp: string; rsync: string };
  vscodeConfig: string;
  vscodeUrl: string;
}

export type KeyFormat = 'openssh' | 'ppk';

export interface TunnelStatus {
  session: string;
  port: number;
  active: number;
  total: number;
  bytesUp: number;
  bytesDown: number;
  /** ISO 8601 */
  since: string;
  lastError: string | null;
}

// ---- commands --------------------------------------------------------------

export const appInfo = () => call<AppInfo>('app_info');
export const restoreLogin = () => call<LoginState | null>('restore_login');
export const login = (req: LoginRequest) => call<LoginState>('login', { ...req });
export const logout = () => call<void>('logout');
export const listSessions = () => call<Session[]>('list_sessions');
export const getSettings = () => call<Settings>('get_settings');
export const setSettings = (settings: Settings) => call<Settings>('set_settings', { settings });
export const openSsh = (session: string, account?: string) =>
  call<TunnelInfo>('open_ssh', account ? { session, account } : { session });
export const tunnelInfo = (session: string) => call<TunnelInfo>('tunnel_info', { session });
export const saveKey = (session: string, format: KeyFormat) =>
  call<{ path: string } | null>('save_key', { session, format });
export const listTunnels = () => call<TunnelStatus[]>('list_tunnels');
export const stopTunnel = (session: string) => call<void>('stop_tunnel', { session });

/** Event emitted by the backend whenever a tunnel starts, stops or changes counters. */
export const TUNNELS_CHANGED = 'tunnels-changed';

/** Subscribes to {@link TUNNELS_CHANGED}; resolves to the unsubscribe function. */
export function onTunnelsChanged(handler: () => void): Promise<UnlistenFn> {
  return listen(TUNNELS_CHANGED, () => handler());
}
