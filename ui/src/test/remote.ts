/** Test helpers for the terminal and files components: fixtures and pushing channel messages / events. */
import { emit } from '@tauri-apps/api/event';
import type { FileEntry, TerminalEvent, TransferView } from '../lib/remote';

/** Delivers messages on a Channel that a mocked command received (in order, as Tauri does). */
export function channelSender(channel: unknown) {
  const id = (channel as { id: number }).id;
  let index = 0;
  return (message: TerminalEvent) =>
    (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void } }).__TAURI_INTERNALS__.runCallback(id, { index: index++, message });
}

export const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

export function entry(over: Partial<FileEntry> & { name: string }): FileEntry {
  return { kind: 'file', size: 1024, mtime: 1_700_000_000, mode: 0o100644, permissions: '-rw-r--r--', linkTarget: null, targetKind: null, ...over };
}

export const HOME_ENTRIES: FileEntry[] = [
  entry({ name: '.ssh', kind: 'dir', size: 4096, permissions: 'drwx------' }),
  entry({ name: 'data', kind: 'dir', size: 4096, permissions: 'drwxr-xr-x' }),
  entry({ name: 'latest', kind: 'symlink', size: 11, permissions: 'lrwxrwxrwx', linkTarget: 'data/run-42', targetKind: 'dir' }),
  entry({ name: '.bashrc', size: 3771 }),
  entry({ name: 'results.csv', size: 5 * 1024 * 1024 }),
  entry({ name: 'gone', kind: 'symlink', size: 8, permissions: 'lrwxrwxrwx', linkTarget: '/nowhere', targetKind: null }),
];

export function transferView(over: Partial<TransferView> = {}): TransferView {
  return {
    id: 1,
    session: 'train-gpu',
    direction: 'upload',
    name: 'dataset.tar.gz',
    source: '/home/me/dataset.tar.gz',
    target: '/home/demo/dataset.tar.gz',
    bytes: 12 * 1024 * 1024,
    total: 48 * 1024 * 1024,
    files: 0,
    filesTotal: 1,
    bytesPerSec: 6 * 1024 * 1024,
    etaSecs: 6,
    state: 'running',
    error: null,
    ...over,
  };
}

export const emitTransfer = (t: TransferView) => emit('transfers-changed', t);
