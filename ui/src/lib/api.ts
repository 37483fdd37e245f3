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

import { ERROR_CODES, type ErrorCode, type KeyFormat, type LoginRequest, type LoginState, type Session, type Settings, type TunnelInfo, type TunnelStatus, type AppInfo, type SavedKey, type AccountKeyView, type RecentServer, type AboutView, type AppTunnel, type RestoredTunnels, type TrayItem } from './bindings';

// The IPC types are generated from the Rust side (src-tauri/src/bindings.rs): never by hand.
export * from './bindings';

/** A rejected command: `code` to branch on, `message` from the server/backend to show. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  /** The CLI's `hint:` line for the same failure, when there is one. */
  readonly hint?: string;
  constructor(code: ErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.hint = hint;
  }
}

/** Normalises whatever `invoke` rejected with into an {@link ApiError}. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e && typeof e === 'object' && 'code' in e) {
    const { code, message, hint } = e as { code: unknown; message?: unknown; hint?: unknown };
    const known = (ERROR_CODES as readonly unknown[]).includes(code) ? (code as ErrorCode) : 'Unknown';
    return new ApiError(known, typeof message === 'string' ? message : String(message ?? code), typeof hint === 'string' ? hint : undefined);
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

// ---- commands --------------------------------------------------------------

export const appInfo = () => call<AppInfo>('app_info');
/** The last successful logins (endpoint, mode, email or access key), most recent first. */
export const recentServers = () => call<RecentServer[]>('recent_servers');
/** Removes one recent server; resolves to the others. */
export const forgetRecentServer = (server: RecentServer) => call<RecentServer[]>('forget_recent_server', { server });
/** bai's version and commit, the server's versions (when logged in) and the log folder. */
export const about = () => call<AboutView>('about');
/** Opens the log folder (chosen in Rust) in the file manager; resolves to its path. */
export const openLogFolder = () => call<string>('open_log_folder');
export const restoreLogin = () => call<LoginState | null>('restore_login');
export const login = (req: LoginRequest) => call<LoginState>('login', { ...req });
export const logout = () => call<void>('logout');
/** Once after the saved login is restored: reopens the tunnels open at the last quit (unless turned off in Preferences). */
export const restoreTunnels = () => call<RestoredTunnels>('restore_tunnels');
export const listSessions = () => call<Session[]>('list_sessions');
export const getSettings = () => call<Settings>('get_settings');
export const setSettings = (settings: Settings) => call<Settings>('set_settings', { settings });
/** The tray icon's menu as it is now (the running tunnels, Open, Stop all, Quit). */
export const trayMenu = () => call<TrayItem[]>('tray_menu');
/** Clicks a tray item; resolves to the text copied, if any. */
export const trayAction = (id: string) => call<string | null>('tray_action', { id });
export const openSsh = (session: string, account?: string) =>
  call<TunnelInfo>('open_ssh', account ? { session, account } : { session });
export const tunnelInfo = (session: string) => call<TunnelInfo>('tunnel_info', { session });
export const saveKey = (session: string, format: KeyFormat) =>
  call<SavedKey | null>('save_key', { session, format });
export const listTunnels = () => call<TunnelStatus[]>('list_tunnels');
/** Stops the session's tunnels, or with `app` only the tunnel to that app. */
export const stopTunnel = (session: string, app?: string) =>
  call<void>('stop_tunnel', app && app !== 'sshd' ? { session, name: app } : { session });
/** Opens a tunnel to an app of a session; an HTTP app's URL is opened in the browser by Rust. */
export const openApp = (session: string, app: string) => call<AppTunnel>('open_app', { session, name: app });
/** Whether an app of this protocol opens in a browser (the rest show host:port). */
export const opensInBrowser = (protocol: string) => protocol === 'http' || protocol === 'preopen';
/** The account's stored SSH public key (`null`: none). */
export const accountKeypair = () => call<AccountKeyView | null>('account_keypair');
/** A new server-generated keypair; it reaches new sessions only. */
export const generateKeypair = () => call<AccountKeyView>('generate_keypair');
/** A native open dialog for a private key file, read and uploaded in Rust; `null` when cancelled. */
export const uploadKeypair = () => call<AccountKeyView | null>('upload_keypair');
/** A native open dialog for the user's own private key (the `-i` of sessions without id_container); `null` when cancelled. */
export const useOwnKey = (session: string) => call<TunnelInfo | null>('use_own_key', { session });

/** Event emitted by the backend whenever a tunnel starts, stops or changes counters. */
export const TUNNELS_CHANGED = 'tunnels-changed';

/** Subscribes to {@link TUNNELS_CHANGED}; resolves to the unsubscribe function. */
export function onTunnelsChanged(handler: () => void): Promise<UnlistenFn> {
  return listen(TUNNELS_CHANGED, () => handler());
}
