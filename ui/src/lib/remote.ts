/**
 * Typed wrappers for the in-app terminal and file browser (issue #15): the same `call()` and
 * {@link ApiError} pattern as `api.ts`. The contract is the Rust side (commands in
 * src-tauri/src/commands/{terminal,files}.rs; the types are generated into bindings.ts).
 *
 * Terminal output arrives on a Tauri `Channel` as base64 (decoded here to bytes, which xterm.js
 * writes as UTF-8); input is coalesced so that a burst of keystrokes or a paste is one IPC call.
 */
import { Channel, invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import { getCurrentWebview } from '@tauri-apps/api/webview';

import { ApiError, toApiError, type ErrorCode } from './api';
import type { CommandError, Listing, TerminalEvent, TerminalView, TransferView } from './bindings';

// The IPC types are generated from the Rust side (src-tauri/src/bindings.rs).
export type { FileEntry, Listing, TerminalEvent, TerminalView, TransferView } from './bindings';

/** `exists` / `host_key_changed` (the CLI's spelling) → `Exists` / `HostKeyChanged`. */
function pascal(code: string): string {
  return code.replace(/(^|_)([a-z])/g, (_m, _s, c: string) => c.toUpperCase());
}

/**
 * {@link toApiError} for the terminal and files commands: the codes they add (`Exists`,
 * `Cancelled`, `HostKeyChanged`, `SshAuthFailed`) are kept, in either spelling.
 */
export function toRemoteError(e: unknown): ApiError {
  if (e && typeof e === 'object' && !(e instanceof ApiError) && 'code' in e) {
    const raw = (e as { code: unknown }).code;
    if (typeof raw === 'string' && raw !== pascal(raw)) return toApiError({ ...(e as object), code: pascal(raw) });
  }
  return toApiError(e);
}

/** Whether an error carries this code. */
export function hasCode(e: unknown, code: ErrorCode): boolean {
  return e instanceof ApiError && e.code === code;
}

/** A `CommandError` from an event payload → {@link ApiError}. */
export const commandError = (e: CommandError) => toRemoteError(e);

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toRemoteError(e);
  }
}

// ---- terminal -------------------------------------------------------------------------------

/** Standard base64 → bytes (the terminal's output). */
export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A terminal event with its output decoded. */
export type TerminalOutput =
  | { kind: 'data'; bytes: Uint8Array }
  | Exclude<TerminalEvent, { kind: 'data' }>;

/** What a terminal tab shows about its shell. */
export type TerminalState = 'connecting' | 'open' | 'exited' | 'closed' | 'failed';

/** Decodes one channel message (bad base64 becomes an empty chunk, never a throw). */
export function decodeTerminalEvent(e: TerminalEvent): TerminalOutput {
  if (e.kind !== 'data') return e;
  try {
    return { kind: 'data', bytes: base64ToBytes(e.data) };
  } catch {
    return { kind: 'data', bytes: new Uint8Array(0) };
  }
}

/**
 * Opens a PTY shell in the session; `onevent` receives its output, exit status and close.
 * Reconnecting is calling this again.
 */
export async function terminalOpen(
  session: string,
  cols: number,
  rows: number,
  onevent: (e: TerminalOutput) => void,
): Promise<TerminalView> {
  const output = new Channel<TerminalEvent>((m) => onevent(decodeTerminalEvent(m)));
  return call<TerminalView>('terminal_open', { session, cols, rows, output });
}

export const terminalInput = (id: number, data: string) => call<void>('terminal_input', { id, data });
export const terminalResize = (id: number, cols: number, rows: number) => call<void>('terminal_resize', { id, cols, rows });
/** Idempotent. */
export const terminalClose = (id: number) => call<void>('terminal_close', { id });

/**
 * Input for one terminal, in order, with at most one call in flight: what is typed while a
 * call is under way goes out as one string in the next call (a paste is one call anyway).
 */
export class InputQueue {
  private pending = '';
  private busy = false;
  constructor(
    private readonly send: (data: string) => Promise<unknown>,
    private readonly onerror: (e: ApiError) => void = () => {},
  ) {}

  push(data: string) {
    this.pending += data;
    if (!this.busy) void this.flush();
  }

  private async flush() {
    this.busy = true;
    try {
      while (this.pending) {
        const data = this.pending;
        this.pending = '';
        try {
          await this.send(data);
        } catch (e) {
          this.onerror(toRemoteError(e));
        }
      }
    } finally {
      this.busy = false;
    }
  }
}

// ---- files ----------------------------------------------------------------------------------

/** The session's home directory. */
export const filesHome = (session: string) => call<string>('files_home', { session });
/** A directory, hidden files included, dirs first. */
export const filesList = (session: string, path: string) => call<Listing>('files_list', { session, path });
export const filesMkdir = (session: string, path: string) => call<void>('files_mkdir', { session, path });
/** Rejects with `Exists` when `to` exists. */
export const filesRename = (session: string, from: string, to: string) => call<void>('files_rename', { session, from, to });
/** Recursive for a folder; a symlink is removed, never followed. */
export const filesDelete = (session: string, path: string) => call<void>('files_delete', { session, path });

export interface UploadRequest {
  session: string;
  remoteDir: string;
  /** `null`: the native open dialog (in Rust). */
  localPaths: string[] | null;
  /** With the dialog: pick one folder instead of files. */
  folder: boolean;
  overwrite: boolean;
}
/** Queues uploads; `[]` when the dialog was cancelled; `Exists` before anything is queued. */
export const filesUpload = (req: UploadRequest) => call<number[]>('files_upload', { ...req });

export interface DownloadRequest {
  session: string;
  remotePaths: string[];
  /** `null`: the native folder dialog (in Rust). */
  localDir: string | null;
  overwrite: boolean;
}
export const filesDownload = (req: DownloadRequest) => call<number[]>('files_download', { ...req });

/** Cancels a transfer; its partial files are removed. */
export const transferCancel = (id: number) => call<void>('transfer_cancel', { id });
export const transferList = () => call<TransferView[]>('transfer_list');
/** Forgets finished transfers. */
export const transferClear = () => call<void>('transfer_clear');

export const TRANSFERS_CHANGED = 'transfers-changed';

/** Every change of a transfer (progress at most ~5/s, every state change). */
export function onTransfersChanged(handler: (t: TransferView) => void): Promise<UnlistenFn> {
  return listen<TransferView>(TRANSFERS_CHANGED, (e) => handler(e.payload));
}

export type DragDrop = { type: 'enter'; paths: string[] } | { type: 'over' } | { type: 'drop'; paths: string[] } | { type: 'leave' };

/**
 * Files dragged from the desktop over the window (Tauri's webview drag-drop event: the web
 * view gets paths, not File objects). Resolves to a no-op outside Tauri.
 */
export async function onDragDrop(handler: (e: DragDrop) => void): Promise<UnlistenFn> {
  let webview;
  try {
    webview = getCurrentWebview();
  } catch {
    return () => {};
  }
  return webview.onDragDropEvent((e) => {
    const p = e.payload;
    if (p.type === 'enter' || p.type === 'drop') handler({ type: p.type, paths: p.paths });
    else handler({ type: p.type });
  });
}
