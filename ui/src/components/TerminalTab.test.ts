import { fireEvent, render, waitFor } from '@testing-library/svelte';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { fail, installIpc } from '../test/ipc';
import { b64, channelSender } from '../test/remote';

// A stand-in for xterm.js (jsdom has no layout): records what is written and lets tests type.
const fake = vi.hoisted(() => {
  const state = { instances: [] as FakeTerminal[] };
  class FakeTerminal {
    cols = 100;
    rows = 30;
    written: string[] = [];
    options: Record<string, unknown>;
    dataHandler: (d: string) => void = () => {};
    keyHandler: (e: KeyboardEvent) => boolean = () => true;
    disposed = false;
    selection = '';
    pasted: string[] = [];
    constructor(options: Record<string, unknown>) {
      this.options = options;
      state.instances.push(this);
    }
    loadAddon() {}
    open(el: HTMLElement) {
      el.innerHTML = '<div class="xterm"><div class="xterm-rows"></div></div>';
    }
    write(d: string | Uint8Array) {
      this.written.push(typeof d === 'string' ? d : new TextDecoder().decode(d));
    }
    onData(h: (d: string) => void) {
      this.dataHandler = h;
    }
    onTitleChange(h: (t: string) => void) {
      this.titleHandler = h;
    }
    titleHandler: (t: string) => void = () => {};
    attachCustomKeyEventHandler(h: (e: KeyboardEvent) => boolean) {
      this.keyHandler = h;
    }
    focus() {}
    getSelection() {
      return this.selection;
    }
    hasSelection() {
      return this.selection !== '';
    }
    clearSelection() {
      this.selection = '';
    }
    paste(t: string) {
      this.pasted.push(t);
      this.dataHandler(t);
    }
    dispose() {
      this.disposed = true;
    }
    get text() {
      return this.written.join('');
    }
  }
  return { state, FakeTerminal };
});
vi.mock('@xterm/xterm', () => ({ Terminal: fake.FakeTerminal }));
vi.mock('@xterm/addon-fit', () => ({ FitAddon: class { fit() {} } }));
vi.mock('@xterm/addon-web-links', () => ({ WebLinksAddon: class {} }));

import TerminalTab from './TerminalTab.svelte';

const term = () => fake.state.instances.at(-1)!;

function ipc(extra: Record<string, unknown> = {}) {
  const senders: ReturnType<typeof channelSender>[] = [];
  let next = 1;
  const calls = installIpc({
    terminal_open: (a) => {
      senders.push(channelSender(a.output));
      return { id: next++, session: a.session, user: 'work', title: `work@${a.session}` };
    },
    terminal_input: null,
    terminal_resize: null,
    terminal_close: null,
    'plugin:clipboard-manager|write_text': null,
    'plugin:clipboard-manager|read_text': 'pasted text',
    ...(extra as object),
  });
  return { calls, senders };
}

describe('TerminalTab', () => {
  beforeEach(() => (fake.state.instances.length = 0));

  it('opens a shell at the terminal size, shows output and sends input', async () => {
    const { calls, senders } = ipc();
    const onstate = vi.fn();
    const { container } = render(TerminalTab, { key: 't1', session: 'train-gpu', active: true, onstate });
    await waitFor(() => expect(container.querySelector('[data-testid=terminal-t1][data-state=open]')).toBeInTheDocument());
    expect(term().options.scrollback).toBe(10000);
    expect(calls[0]).toMatchObject({ cmd: 'terminal_open', args: { session: 'train-gpu', cols: 100, rows: 30 } });
    expect(container.querySelector('[data-testid=terminal-t1]')).toHaveAttribute('data-terminal-id', '1');
    expect(onstate).toHaveBeenLastCalledWith('open');

    senders[0]({ kind: 'data', data: b64('work@train-gpu:~$ ') });
    expect(term().text).toContain('work@train-gpu:~$ ');
    term().titleHandler('work@main1: ~/data');
    await waitFor(() => expect(container.querySelector('[data-testid=terminal-title]')).toHaveTextContent('work@main1: ~/data'));
    term().dataHandler('ls\r');
    await waitFor(() => expect(calls.filter((c) => c.cmd === 'terminal_input')).toEqual([{ cmd: 'terminal_input', args: { id: 1, data: 'ls\r' } }]));
  });

  it('shows the exit status, then reconnects on demand', async () => {
    const { calls, senders } = ipc();
    const { container, getByTestId } = render(TerminalTab, { key: 't1', session: 's', active: true });
    await waitFor(() => expect(container.querySelector('[data-state=open]')).toBeInTheDocument());
    senders[0]({ kind: 'exit', status: 3, signal: null });
    senders[0]({ kind: 'closed', error: null });
    await waitFor(() => expect(getByTestId('terminal-reconnect')).toBeInTheDocument());
    expect(term().text).toContain('[shell exited with status 3]');
    expect(getByTestId('terminal-state')).toHaveTextContent('shell ended');
    // typing into an ended shell sends nothing
    term().dataHandler('x');
    await fireEvent.click(getByTestId('terminal-reconnect'));
    await waitFor(() => expect(container.querySelector('[data-testid=terminal-t1]')).toHaveAttribute('data-terminal-id', '2'));
    expect(calls.filter((c) => c.cmd === 'terminal_open')).toHaveLength(2);
    expect(calls.some((c) => c.cmd === 'terminal_input')).toBe(false);
    // the old shell's late output is ignored
    senders[0]({ kind: 'data', data: b64('stale') });
    expect(term().text).not.toContain('stale');
  });

  it('says why the connection closed, with the hint', async () => {
    const { senders } = ipc();
    const { container, getByTestId } = render(TerminalTab, { key: 't1', session: 's', active: true });
    await waitFor(() => expect(container.querySelector('[data-state=open]')).toBeInTheDocument());
    senders[0]({ kind: 'closed', error: { code: 'Network', message: 'websocket closed (1011)', hint: 'check the session' } });
    await waitFor(() => expect(getByTestId('terminal-error')).toHaveTextContent('websocket closed (1011)'));
    expect(getByTestId('terminal-error')).toHaveTextContent('check the session');
    expect(term().text).toContain('[connection closed: websocket closed (1011)]');
    expect(getByTestId('terminal-reconnect')).toBeInTheDocument();
  });

  it('reports a failed open (host key changed) with the hint and offers Reconnect', async () => {
    ipc({ terminal_open: () => fail('HostKeyChanged', 'the host key of s changed') });
    const onexpired = vi.fn();
    const { getByTestId } = render(TerminalTab, { key: 't1', session: 's', active: true, onexpired });
    await waitFor(() => expect(getByTestId('terminal-error')).toHaveAttribute('data-code', 'HostKeyChanged'));
    expect(getByTestId('terminal-reconnect')).toBeInTheDocument();
    expect(onexpired).not.toHaveBeenCalled();
  });

  it('a LoginRequired failure asks the app to log in again', async () => {
    ipc({ terminal_open: () => fail('LoginRequired', 'expired') });
    const onexpired = vi.fn();
    render(TerminalTab, { key: 't1', session: 's', active: true, onexpired });
    await waitFor(() => expect(onexpired).toHaveBeenCalled());
  });

  it('copies with Ctrl+Shift+C and pastes with Ctrl+Shift+V', async () => {
    const { calls } = ipc();
    const { container } = render(TerminalTab, { key: 't1', session: 's', active: true });
    await waitFor(() => expect(container.querySelector('[data-state=open]')).toBeInTheDocument());
    term().selection = 'selected text';
    const c = new KeyboardEvent('keydown', { ctrlKey: true, shiftKey: true, code: 'KeyC' });
    expect(term().keyHandler(c)).toBe(false);
    await waitFor(() => expect(calls.find((x) => x.cmd === 'plugin:clipboard-manager|write_text')?.args).toEqual({ text: 'selected text' }));
    const v = new KeyboardEvent('keydown', { ctrlKey: true, shiftKey: true, code: 'KeyV' });
    expect(term().keyHandler(v)).toBe(false);
    await waitFor(() => expect(term().pasted).toEqual(['pasted text']));
    await waitFor(() => expect(calls.filter((x) => x.cmd === 'terminal_input').map((x) => x.args.data)).toEqual(['pasted text']));
    // other keys go to the shell
    expect(term().keyHandler(new KeyboardEvent('keydown', { ctrlKey: true, code: 'KeyC' }))).toBe(true);
  });

  it('closes the shell and disposes xterm when the tab goes', async () => {
    const { calls } = ipc();
    const { container, unmount } = render(TerminalTab, { key: 't1', session: 's', active: true });
    await waitFor(() => expect(container.querySelector('[data-state=open]')).toBeInTheDocument());
    const t = term();
    unmount();
    await waitFor(() => expect(calls.filter((c) => c.cmd === 'terminal_close')).toEqual([{ cmd: 'terminal_close', args: { id: 1 } }]));
    expect(t.disposed).toBe(true);
  });
});
