import { describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import {
  InputQueue,
  base64ToBytes,
  decodeTerminalEvent,
  filesDownload,
  filesList,
  filesUpload,
  hasCode,
  onDragDrop,
  onTransfersChanged,
  terminalOpen,
  toRemoteError,
  transferCancel,
  type TerminalOutput,
} from './remote';
import { fail, installIpc } from '../test/ipc';
import { b64, channelSender, emitTransfer, transferView } from '../test/remote';

describe('base64 terminal data', () => {
  it('decodes to the bytes, which are UTF-8 text', () => {
    const bytes = base64ToBytes(b64('héllo ✓ 안녕\x1b[31m'));
    expect(new TextDecoder().decode(bytes)).toBe('héllo ✓ 안녕\x1b[31m');
  });
  it('keeps binary bytes as they are', () => {
    expect(Array.from(base64ToBytes('AP+AEw=='))).toEqual([0, 255, 128, 19]);
  });
  it('turns bad base64 into an empty chunk, and passes exit/closed through', () => {
    expect(decodeTerminalEvent({ kind: 'data', data: '@@not base64@@' })).toEqual({ kind: 'data', bytes: new Uint8Array(0) });
    expect(decodeTerminalEvent({ kind: 'exit', status: 3, signal: null })).toEqual({ kind: 'exit', status: 3, signal: null });
  });
});

describe('errors', () => {
  it('keeps the new codes, in either spelling', () => {
    const e = toRemoteError({ code: 'exists', message: '/home/demo/a exists', hint: 'replace it' });
    expect(e).toBeInstanceOf(ApiError);
    expect(hasCode(e, 'Exists')).toBe(true);
    expect(e.hint).toBe('replace it');
    expect(hasCode(toRemoteError({ code: 'HostKeyChanged', message: 'm' }), 'HostKeyChanged')).toBe(true);
    expect(toRemoteError({ code: 'session_not_found', message: 'm' }).code).toBe('SessionNotFound');
    expect(toRemoteError({ code: 'Whatever', message: 'm' }).code).toBe('Unknown');
  });
  it('wrappers reject with ApiError', async () => {
    installIpc({ files_list: () => fail('Exists', 'nope') });
    await expect(filesList('s', '/')).rejects.toMatchObject({ code: 'Exists', message: 'nope' });
  });
});

describe('terminalOpen', () => {
  it('sends a channel and delivers decoded output', async () => {
    let send!: ReturnType<typeof channelSender>;
    const calls = installIpc({
      terminal_open: (a) => {
        send = channelSender(a.output);
        return { id: 7, session: 's', user: 'work', title: 'work@s' };
      },
    });
    const got: TerminalOutput[] = [];
    const view = await terminalOpen('s', 80, 24, (e) => got.push(e));
    expect(view.id).toBe(7);
    expect(calls[0].args).toMatchObject({ session: 's', cols: 80, rows: 24 });
    send({ kind: 'data', data: b64('ok\r\n') });
    send({ kind: 'exit', status: 0, signal: null });
    expect(got).toHaveLength(2);
    expect(got[0].kind === 'data' && new TextDecoder().decode(got[0].bytes)).toBe('ok\r\n');
    expect(got[1]).toEqual({ kind: 'exit', status: 0, signal: null });
  });
});

describe('InputQueue', () => {
  it('keeps order and coalesces what is typed while a call is in flight', async () => {
    const sent: string[] = [];
    let release!: () => void;
    const send = vi.fn((d: string) => {
      sent.push(d);
      return sent.length === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve();
    });
    const q = new InputQueue(send);
    q.push('l');
    q.push('s');
    q.push('\r');
    expect(sent).toEqual(['l']);
    release();
    await vi.waitFor(() => expect(sent).toEqual(['l', 's\r']));
  });
  it('reports errors and goes on', async () => {
    const onerror = vi.fn();
    const sent: string[] = [];
    const q = new InputQueue((d) => {
      sent.push(d);
      return d === 'a' ? Promise.reject({ code: 'Network', message: 'gone' }) : Promise.resolve();
    }, onerror);
    q.push('a');
    await vi.waitFor(() => expect(onerror).toHaveBeenCalled());
    expect(onerror.mock.calls[0][0]).toMatchObject({ code: 'Network' });
    q.push('b');
    await vi.waitFor(() => expect(sent).toEqual(['a', 'b']));
  });
});

describe('files and transfers', () => {
  it('passes the request as the payload', async () => {
    const calls = installIpc({ files_upload: [1, 2], files_download: [], transfer_cancel: null });
    await filesUpload({ session: 's', remoteDir: '/home/demo', localPaths: null, folder: true, overwrite: false });
    await filesDownload({ session: 's', remotePaths: ['/a'], localDir: '/tmp', overwrite: true });
    await transferCancel(4);
    expect(calls).toEqual([
      { cmd: 'files_upload', args: { session: 's', remoteDir: '/home/demo', localPaths: null, folder: true, overwrite: false } },
      { cmd: 'files_download', args: { session: 's', remotePaths: ['/a'], localDir: '/tmp', overwrite: true } },
      { cmd: 'transfer_cancel', args: { id: 4 } },
    ]);
  });
  it('hands transfers-changed payloads to the handler', async () => {
    installIpc({});
    const handler = vi.fn();
    const unlisten = await onTransfersChanged(handler);
    await emitTransfer(transferView({ bytes: 5 }));
    expect(handler).toHaveBeenCalledWith(expect.objectContaining({ id: 1, bytes: 5 }));
    unlisten();
  });
  it('drag and drop is a no-op outside Tauri', async () => {
    installIpc({});
    const unlisten = await onDragDrop(vi.fn());
    expect(typeof unlisten).toBe('function');
  });
});
