/** Pure helpers for display and validation (unit-tested in format.test.ts). */
import type { ApiError, ErrorCode, RestoredTunnels } from './api';
import { ACCOUNT_MAX, PORT_MAX, PORT_MIN, REFRESH_MAX, REFRESH_MIN } from './bindings';

// The limits come from the Rust side (bai-core), which checks them again.
export { ACCOUNT_MAX, PORT_MAX, PORT_MIN, REFRESH_MAX, REFRESH_MIN };

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`;
}

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 minutes ago"; `now` is injectable for tests. */
export function relativeTime(iso: string, now: number = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.round((t - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return 'just now';
  if (abs < 45 * 60) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 22 * 3600) return rtf.format(Math.round(s / 3600), 'hour');
  if (abs < 26 * 86400) return rtf.format(Math.round(s / 86400), 'day');
  if (abs < 320 * 86400) return rtf.format(Math.round(s / (30 * 86400)), 'month');
  return rtf.format(Math.round(s / (365 * 86400)), 'year');
}

/** Full local date and time, for title attributes. */
export function absoluteTime(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export const PORT_RECOMMENDED_MIN = 10000;
export const PORT_RECOMMENDED_MAX = 65000;

export type Parsed<T> = { ok: true; value: T; warning?: string } | { ok: false; error: string };

/** Preferred SSH port: blank = random (null); whole numbers 1025–65534. */
export function parsePreferredPort(raw: string): Parsed<number | null> {
  const s = raw.trim();
  if (s === '') return { ok: true, value: null };
  if (!/^\d+$/.test(s)) {
    return { ok: false, error: `Preferred SSH port must be a whole number between ${PORT_MIN} and ${PORT_MAX}, or blank for a random port.` };
  }
  const n = Number(s);
  if (n < PORT_MIN || n > PORT_MAX) {
    return { ok: false, error: `Preferred SSH port ${n} is out of range: use ${PORT_MIN}–${PORT_MAX}, or leave it blank for a random port.` };
  }
  if (n < PORT_RECOMMENDED_MIN || n > PORT_RECOMMENDED_MAX) {
    return { ok: true, value: n, warning: `Port ${n} is allowed, but ${PORT_RECOMMENDED_MIN}–${PORT_RECOMMENDED_MAX} is recommended to avoid clashes with other services.` };
  }
  return { ok: true, value: n };
}


/** Auto-refresh interval in seconds: 0 = off, else 5–3600. */
export function parseRefreshSeconds(raw: string): Parsed<number> {
  const s = raw.trim();
  if (!/^\d+$/.test(s)) return { ok: false, error: 'Auto-refresh must be a whole number of seconds (0 turns it off).' };
  const n = Number(s);
  if (n !== 0 && (n < REFRESH_MIN || n > REFRESH_MAX)) {
    return { ok: false, error: `Auto-refresh must be 0 (off) or between ${REFRESH_MIN} and ${REFRESH_MAX} seconds.` };
  }
  return { ok: true, value: n };
}

/** Container account name (POSIX-ish user name). */
export function parseAccount(raw: string): Parsed<string> {
  const s = raw.trim();
  if (s === '') return { ok: false, error: 'Account must not be empty (the default is "work").' };
  if (!new RegExp(`^[a-z_][a-z0-9_.-]{0,${ACCOUNT_MAX - 1}}$`, 'i').test(s)) {
    return { ok: false, error: `Account must be a user name: letters, digits, "_", "-" or "." (up to ${ACCOUNT_MAX}), starting with a letter or "_".` };
  }
  return { ok: true, value: s };
}

/** Whether `raw` looks like an http(s) URL with a host. */
export function parseEndpoint(raw: string): Parsed<string> {
  const s = raw.trim();
  if (s === '') return { ok: false, error: 'Enter the server address, for example https://backend.example.com.' };
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return { ok: false, error: `"${s}" is not a valid URL. Use the full address, for example https://backend.example.com.` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return { ok: false, error: `The server address must start with https:// or http:// (got ${u.protocol}).` };
  }
  if (!u.hostname) return { ok: false, error: 'The server address has no host name.' };
  return { ok: true, value: s };
}

const LOGIN_TEXT: Partial<Record<ErrorCode, string>> = {
  BadUrl: 'This server address does not work for this login.',
  Unreachable: 'Could not reach the server. Check the address and your network connection.',
  Tls: 'Secure connection (TLS) to the server failed.',
  AuthFailed: 'Login failed: the credentials were not accepted.',
  TotpRequired: 'This account uses two-factor authentication. Enter the one-time code from your authenticator app.',
  UnsupportedVersion: 'This Backend.AI server version is not supported.',
  LoginRequired: 'Your login has expired. Please log in again.',
  Network: 'A network error occurred while talking to the server.',
};

/** What the server address field asks for in each mode. */
export const ENDPOINT_HINT: Record<'session' | 'api', { text: string; example: string }> = {
  session: {
    text: 'The web UI’s address (the webserver), the one you open in a browser.',
    example: 'https://backend.example.com',
  },
  api: {
    text: 'The manager’s API endpoint (not the web UI).',
    example: 'https://api.backend.example.com:8081',
  },
};

/** The headline for a login failure, per code and mode. */
export function loginErrorText(err: ApiError, mode: 'session' | 'api', otpSent: boolean): string {
  if (err.code === 'AuthFailed') {
    return mode === 'session' ? 'Wrong email or password.' : 'The access key or secret key is wrong.';
  }
  if (err.code === 'TotpRequired' && otpSent) return 'That one-time code was not accepted. Enter the current code.';
  return LOGIN_TEXT[err.code] ?? 'Login failed.';
}

const GENERAL_TEXT: Partial<Record<ErrorCode, string>> = {
  SessionNotFound: 'The session no longer exists.',
  AppNotFound: 'This session does not offer SSH (no sshd service port).',
  PortInUse: 'The local port is already in use.',
  InvalidInput: 'The input was rejected.',
  Unreachable: 'Could not reach the server.',
  Network: 'Network error.',
  Tls: 'TLS error.',
  LoginRequired: 'Your login has expired.',
};

/** A short headline for any other failure. */
export function errorHeadline(err: ApiError): string {
  return GENERAL_TEXT[err.code] ?? 'Something went wrong.';
}

/** "s1" for SSH, "s1 (jupyter)" for another app. */
function tunnelName(session: string, app: string): string {
  return app === 'sshd' ? session : `${session} (${app})`;
}

/**
 * The start-up banner's lines about the tunnels of the last run: "Reopened 2 tunnels: s1 on
 * 2222, s2 on 40123 (2200 was taken)", then one "Dropped s3: the session ended …" per tunnel
 * not reopened. Empty when there is nothing to tell.
 */
export function restoreSummary(r: RestoredTunnels): string[] {
  const lines: string[] = [];
  if (r.reopened.length > 0) {
    const items = r.reopened.map(
      (t) => `${tunnelName(t.session, t.app)} on ${t.port}${t.movedFrom != null ? ` (${t.movedFrom} was taken)` : ''}`,
    );
    const n = r.reopened.length;
    lines.push(`Reopened ${n} tunnel${n === 1 ? '' : 's'}: ${items.join(', ')}`);
  }
  for (const d of r.dropped) lines.push(`Dropped ${tunnelName(d.session, d.app)}: ${d.reason}`);
  return lines;
}
