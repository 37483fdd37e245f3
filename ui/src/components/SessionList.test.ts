import { fireEvent, render, waitFor, within } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import SessionList from './SessionList.svelte';
import { SESSIONS, fail, installIpc, tunnelStatus } from '../test/ipc';

function rows(c: HTMLElement) {
  return Array.from(c.querySelectorAll<HTMLElement>('[data-testid=session-row]'));
}
function row(c: HTMLElement, name: string) {
  return c.querySelector<HTMLElement>(`[data-testid=session-row][data-session="${name}"]`)!;
}

describe('SessionList', () => {
  afterEach(() => vi.useRealTimers());

  it('shows loading, then rows with status text, image, times and SSH state', async () => {
    let release!: (v: unknown) => void;
    installIpc({ list_sessions: () => new Promise((r) => (release = r)) });
    const onssh = vi.fn();
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh, onexpired: vi.fn() });
    expect(container.querySelector('#sessions-loading')).toHaveTextContent('Loading sessions');
    release(SESSIONS);
    await waitFor(() => expect(rows(container)).toHaveLength(3));

    const r = row(container, 'notebook');
    expect(within(r).getByTestId('session-status')).toHaveTextContent('PENDING'); // text, not colour alone
    expect(r).toHaveTextContent('waiting for resources');
    expect(r).toHaveTextContent('cr.backend.ai/stable/python:3.12');
    const time = r.querySelector('time')!;
    expect(time).toHaveTextContent(/minute ago|just now/);
    expect(time.getAttribute('title')).toBeTruthy();
    expect(time.getAttribute('datetime')).toBe(SESSIONS[1].createdAt);

    const enabled = within(row(container, 'train-gpu')).getByTestId('ssh-button');
    expect(enabled).toBeEnabled();
    await fireEvent.click(enabled);
    expect(onssh).toHaveBeenCalledWith(SESSIONS[0]);
  });

  it('disables SSH with a tooltip and accessible description saying why', async () => {
    installIpc({ list_sessions: SESSIONS });
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh: vi.fn(), onexpired: vi.fn() });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    const btn = within(row(container, 'web-only')).getByTestId('ssh-button');
    expect(btn).toBeDisabled();
    expect(btn).toHaveAttribute('title', 'The image has no sshd service port.');
    expect(btn).toHaveAccessibleDescription('The image has no sshd service port.');
    expect(btn.parentElement).toHaveAttribute('title', 'The image has no sshd service port.');
    expect(within(row(container, 'notebook')).getByTestId('ssh-button')).toBeDisabled();
  });

  it('offers Terminal and Files on running sessions with SSH, disabled with the reason otherwise', async () => {
    installIpc({ list_sessions: SESSIONS });
    const onterminal = vi.fn();
    const onfiles = vi.fn();
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh: vi.fn(), onterminal, onfiles, onexpired: vi.fn() });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    const r = within(row(container, 'train-gpu'));
    await fireEvent.click(r.getByTestId('terminal-button'));
    await fireEvent.click(r.getByTestId('files-button'));
    expect(onterminal).toHaveBeenCalledWith(SESSIONS[0]);
    expect(onfiles).toHaveBeenCalledWith(SESSIONS[0]);
    const pending = within(row(container, 'notebook')).getByTestId('terminal-button');
    expect(pending).toBeDisabled();
    expect(pending).toHaveAccessibleDescription(/pending; a terminal and files need a running session/);
    const noSshd = within(row(container, 'web-only')).getByTestId('files-button');
    expect(noSshd).toBeDisabled();
    expect(noSshd).toHaveAttribute('title', 'The image has no sshd service port.');
  });

  it('has no Terminal/Files buttons when nobody handles them', async () => {
    installIpc({ list_sessions: SESSIONS });
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh: vi.fn(), onexpired: vi.fn() });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    expect(container.querySelector('[data-testid=terminal-button]')).toBeNull();
  });

  it('filters by name, image and status', async () => {
    installIpc({ list_sessions: SESSIONS });
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh: vi.fn(), onexpired: vi.fn() });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    const filter = container.querySelector('#session-filter')!;
    await fireEvent.input(filter, { target: { value: 'nginx' } });
    expect(rows(container).map((r) => r.dataset.session)).toEqual(['web-only']);
    await fireEvent.input(filter, { target: { value: 'pending' } });
    expect(rows(container).map((r) => r.dataset.session)).toEqual(['notebook']);
    await fireEvent.input(filter, { target: { value: 'zzz' } });
    expect(container.querySelector('#sessions-no-match')).toHaveTextContent('No session matches');
  });

  it('shows the empty state', async () => {
    installIpc({ list_sessions: [] });
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh: vi.fn(), onexpired: vi.fn() });
    await waitFor(() => expect(container.querySelector('#sessions-empty')).toBeInTheDocument());
  });

  it('shows errors with retry, and reports LoginRequired', async () => {
    let mode = 'fail';
    const calls = installIpc({
      list_sessions: () => (mode === 'fail' ? fail('Unreachable', 'connection refused') : SESSIONS),
    });
    const onexpired = vi.fn();
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh: vi.fn(), onexpired });
    await waitFor(() => expect(container.querySelector('#sessions-error')).toHaveTextContent('connection refused'));
    expect(onexpired).not.toHaveBeenCalled();
    mode = 'ok';
    await fireEvent.click(within(container.querySelector<HTMLElement>('#sessions-error')!).getByText('Retry'));
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    expect(container.querySelector('#sessions-error')).toBeNull();
    expect(calls.filter((c) => c.cmd === 'list_sessions')).toHaveLength(2);

    installIpc({ list_sessions: () => fail('LoginRequired', 'token expired') });
    await fireEvent.click(container.querySelector('#refresh')!);
    await waitFor(() => expect(onexpired).toHaveBeenCalled());
  });

  it('auto-refreshes at the configured interval and refreshes on demand', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const calls = installIpc({ list_sessions: SESSIONS });
    const { container } = render(SessionList, { refreshSeconds: 10, tunnels: [], onssh: vi.fn(), onexpired: vi.fn() });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_000);
    await waitFor(() => expect(calls).toHaveLength(2));
    await fireEvent.click(container.querySelector('#refresh')!);
    await waitFor(() => expect(calls).toHaveLength(3));
  });

  it('marks sessions with a running tunnel', async () => {
    installIpc({ list_sessions: SESSIONS });
    const { container } = render(SessionList, {
      refreshSeconds: 0,
      tunnels: [tunnelStatus({ session: 'train-gpu', port: 10022 })],
      onssh: vi.fn(),
      onexpired: vi.fn(),
    });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    expect(within(row(container, 'train-gpu')).getByTestId('ssh-availability')).toHaveTextContent('Tunnel :10022');
  });

  it('lists each running session\'s apps; HTTP apps open through Rust, TCP apps show host:port to copy', async () => {
    const calls = installIpc({
      list_sessions: SESSIONS,
      open_app: (a) =>
        a.name === 'jupyter'
          ? { session: 'train-gpu', app: 'jupyter', protocol: 'http', host: '127.0.0.1', port: 40001, url: 'http://127.0.0.1:40001/tree' }
          : { session: 'train-gpu', app: 'redis', protocol: 'tcp', host: '127.0.0.1', port: 40002, url: null },
      'plugin:clipboard-manager|write_text': null,
    });
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh: vi.fn(), onexpired: vi.fn() });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    const menu = within(row(container, 'train-gpu')).getByTestId('apps-menu');
    expect(menu).toHaveTextContent('Apps (2)');
    const items = Array.from(menu.querySelectorAll<HTMLElement>('[data-testid=app-item]'));
    expect(items.map((i) => i.dataset.app)).toEqual(['jupyter', 'redis']); // sshd has its own button
    expect(row(container, 'notebook').querySelector('[data-testid=apps-menu]')).toBeNull(); // not running
    expect(within(row(container, 'web-only')).getByTestId('apps-menu')).toHaveTextContent('Apps (1)');

    const [jupyter, redis] = items;
    expect(within(jupyter).getByTestId('app-open')).toHaveTextContent('Open in browser');
    await fireEvent.click(within(jupyter).getByTestId('app-open'));
    await waitFor(() => expect(within(jupyter).getByTestId('app-address')).toHaveTextContent('opened 127.0.0.1:40001'));
    // Only the session and the app name go to Rust: never a URL.
    expect(calls.filter((c) => c.cmd === 'open_app')).toEqual([{ cmd: 'open_app', args: { session: 'train-gpu', name: 'jupyter' } }]);
    expect(jupyter.querySelector('button[id^=copy-]')).toBeNull();

    expect(within(redis).getByTestId('app-open')).toHaveTextContent('Open tunnel');
    await fireEvent.click(within(redis).getByTestId('app-open'));
    await waitFor(() => expect(within(redis).getByTestId('app-address')).toHaveTextContent('127.0.0.1:40002'));
    const copy = redis.querySelector<HTMLButtonElement>('button[id^=copy-]')!;
    expect(copy).toBeTruthy();
    await fireEvent.click(copy);
    await waitFor(() =>
      expect(calls.find((c) => c.cmd === 'plugin:clipboard-manager|write_text')?.args).toMatchObject({ text: '127.0.0.1:40002' }),
    );
  });

  it('shows why an app could not be opened', async () => {
    installIpc({ list_sessions: SESSIONS, open_app: () => fail('AppNotFound', 'The session has no app jupyter.') });
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels: [], onssh: vi.fn(), onexpired: vi.fn() });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    const item = row(container, 'train-gpu').querySelector<HTMLElement>('[data-app=jupyter]')!;
    await fireEvent.click(within(item).getByTestId('app-open'));
    await waitFor(() => expect(within(item).getByRole('alert')).toHaveTextContent('no app jupyter'));
  });

  it('counts only SSH tunnels as the SSH column\'s tunnel', async () => {
    installIpc({ list_sessions: SESSIONS });
    const tunnels = [tunnelStatus({ app: 'jupyter', protocol: 'http', port: 40001, url: 'http://127.0.0.1:40001/tree' })];
    const { container } = render(SessionList, { refreshSeconds: 0, tunnels, onssh: vi.fn(), onexpired: vi.fn() });
    await waitFor(() => expect(rows(container)).toHaveLength(3));
    expect(within(row(container, 'train-gpu')).getByTestId('ssh-availability')).toHaveTextContent('Available');
  });
});
