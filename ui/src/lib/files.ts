/** Pure helpers of the file browser and the transfers panel (unit-tested in files.test.ts). */
import type { ApiError, ErrorCode } from './api';
import { errorHeadline, formatBytes } from './format';
import type { FileEntry, TransferView } from './remote';

/** "/home/demo" + "a" → "/home/demo/a"; "/" + "a" → "/a". */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/** "/home/demo/a" → "/home/demo"; "/a" → "/"; "/" → "/". */
export function parentPath(p: string): string {
  const t = p.replace(/\/+$/, '');
  const i = t.lastIndexOf('/');
  return i <= 0 ? '/' : t.slice(0, i);
}

/** Breadcrumbs of an absolute path: [{name: "/", path: "/"}, {name: "home", path: "/home"}, …]. */
export function crumbs(p: string): { name: string; path: string }[] {
  const out = [{ name: '/', path: '/' }];
  let acc = '';
  for (const part of p.split('/').filter(Boolean)) {
    acc += `/${part}`;
    out.push({ name: part, path: acc });
  }
  return out;
}

/** A new file or folder name: not empty, no "/", not "." or "..". Returns the error or null. */
export function nameError(raw: string): string | null {
  if (raw.trim() === '') return 'Enter a name.';
  if (raw.includes('/')) return 'A name cannot contain “/”.';
  if (raw === '.' || raw === '..') return `“${raw}” is not a usable name.`;
  if (raw.includes('\0')) return 'A name cannot contain a NUL character.';
  return null;
}

/** Hidden = starts with a dot. */
export const isHidden = (e: FileEntry) => e.name.startsWith('.');

/** Whether double-click/Enter opens it as a directory (a dir, or a symlink to one). */
export const opensAsDir = (e: FileEntry) => e.kind === 'dir' || (e.kind === 'symlink' && e.targetKind === 'dir');

/** The icon per kind (FileIcon.svelte); a link to a folder looks like a folder. */
export function kindIcon(e: FileEntry): 'dir' | 'file' | 'link' | 'broken' | 'other' {
  if (e.kind === 'dir') return 'dir';
  if (e.kind === 'other') return 'other';
  if (e.kind === 'symlink') return e.targetKind === 'dir' ? 'dir' : e.targetKind === null ? 'broken' : 'link';
  return 'file';
}

/** What the kind is, in words (for screen readers and titles). */
export function kindText(e: FileEntry): string {
  if (e.kind === 'dir') return 'folder';
  if (e.kind === 'file') return 'file';
  if (e.kind === 'other') return 'special file';
  if (e.targetKind === 'dir') return 'link to a folder';
  if (e.targetKind === 'file') return 'link to a file';
  if (e.targetKind === 'other') return 'link to a special file';
  return 'broken link';
}

/** The size column: files and links to files have a size; folders and special files do not. */
export function sizeText(e: FileEntry): string {
  return e.kind === 'file' ? formatBytes(e.size) : '—';
}

/** Local date and time of a unix mtime, "—" when unknown. */
export function mtimeText(mtime: number | null): string {
  if (mtime === null) return '—';
  return new Date(mtime * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** "12 MiB/s". */
export function formatSpeed(bytesPerSec: number): string {
  return `${formatBytes(Math.round(bytesPerSec))}/s`;
}

/** Seconds left → "45 s", "3 min 05 s", "1 h 02 min"; "—" when unknown. */
export function formatEta(secs: number | null): string {
  if (secs === null || !Number.isFinite(secs) || secs < 0) return '—';
  const s = Math.round(secs);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** "3.0 MiB of 10 MiB" or "3.0 MiB" when the total is unknown. */
export function bytesText(t: TransferView): string {
  return t.total === null ? formatBytes(t.bytes) : `${formatBytes(t.bytes)} of ${formatBytes(t.total)}`;
}

export const isActive = (t: TransferView) => t.state === 'queued' || t.state === 'running';

/** The last path component of a local or remote path (for "Replace X?"). */
export function baseName(p: string): string {
  const t = p.replace(/[/\\]+$/, '');
  const i = Math.max(t.lastIndexOf('/'), t.lastIndexOf('\\'));
  return i < 0 ? t : t.slice(i + 1);
}

/**
 * The path an `Exists` message names ("/home/demo/a.txt already exists …", or quoted), or null.
 * Only for the "Replace …?" title: the message itself is shown as it is.
 */
export function pathInMessage(message: string): string | null {
  const quoted = /[“"'`]((?:[A-Za-z]:\\|[/~])[^“”"'`]+)[”"'`]/.exec(message);
  if (quoted) return quoted[1];
  const bare = /(?:^|\s)((?:[A-Za-z]:\\|\/|~\/)\S+)/.exec(message);
  return bare ? bare[1].replace(/[.,:;)]+$/, '') : null;
}

const REMOTE_TEXT: Partial<Record<ErrorCode, string>> = {
  HostKeyChanged: 'The session’s SSH host key is not the one bai pinned.',
  SshAuthFailed: 'The session refused the SSH key.',
  Exists: 'It already exists.',
  FileNotFound: 'No such file or folder.',
  SessionNotRunning: 'The session is not running.',
  Io: 'A local file could not be read or written.',
};

/** The headline of a terminal or files failure (the new codes included). */
export function remoteHeadline(err: ApiError): string {
  return REMOTE_TEXT[err.code] ?? errorHeadline(err);
}
