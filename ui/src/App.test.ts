import { fireEvent, render, waitFor } from '@testing-library/svelte';
import { emit } from '@tauri-apps/api/event';
import { describe, expect, it } from 'vitest';
import App from './App.svelte';
import { SESSIONS, fail, installIpc, tunnelStatus } from './test/ipc';

const base = {
  app_info: { version: '0.1.0', sandbox: null },
  get_settings: { preferredSshPort: null, refreshSeconds: 0, account: 'work', keepInTray: true, startAtLogin: false },
  list_sessions: SESSIONS,
  list_tunnels: [],
  logout: null,
  restore_tunnels: { reopened: [], dropped: [] },
};

describe('App', () => {
  it('shows the login screen when nothing is restored', async () => {
    installIpc({ ...base, restore_login: null });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('#login-button')).toBeInTheDocument());
  });

  it('skips login with a restored login, and logs out', async () => {
    const calls = installIpc({ ...base, restore_login: { endpoint: 'https://bai.example.com', mode: 'session', user: 'me@example.com', role: 'user' } });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('[data-testid=session-row]')).toBeInTheDocument());
    expect(container.querySelector('#whoami')).toHaveTextContent('me@example.com');
    expect(container.querySelector('#login-button')).toBeNull();
    await fireEvent.click(container.querySelector('#logout')!);
    await waitFor(() => expect(container.querySelector('#login-button')).toBeInTheDocument());
    expect(calls.some((c) => c.cmd === 'logout')).toBe(true);
  });

  it('opens a Files tab from the session list, and logging out closes it', async () => {
    installIpc({
      ...base,
      restore_login: { endpoint: 'https://x', mode: 'session', user: 'me' },
      files_home: '/home/demo',
      files_list: { path: '/home/demo', entries: [] },
      transfer_list: [],
    });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('[data-session=train-gpu] [data-testid=files-button]')).toBeInTheDocument());
    await fireEvent.click(container.querySelector('[data-session=train-gpu] [data-testid=files-button]')!);
    await waitFor(() => expect(container.querySelector('[data-testid=files-train-gpu][data-path="/home/demo"]')).toBeInTheDocument());
    expect(container.querySelector('[role=tab][aria-selected=true]')).toHaveTextContent('train-gpu — Files');
    expect(container.querySelector('#transfers-panel')).toBeInTheDocument();
    await fireEvent.click(container.querySelector('#logout')!);
    await waitFor(() => expect(container.querySelector('#login-button')).toBeInTheDocument());
    expect(container.querySelector('#workspace')).toBeNull();
  });

  it('says once which tunnels of the last run came back, and the banner can be dismissed', async () => {
    const calls = installIpc({
      ...base,
      restore_login: { endpoint: 'https://x', mode: 'session', user: 'me' },
      restore_tunnels: {
        reopened: [
          { session: 's1', app: 'sshd', port: 2222, movedFrom: null, note: null },
          { session: 's2', app: 'sshd', port: 40123, movedFrom: 2200, note: 'port 2200 was taken; port 40123 is used instead' },
        ],
        dropped: [{ session: 's3', app: 'sshd', reason: 'the session ended (it is no longer listed)' }],
      },
    });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('#restore-banner')).toBeInTheDocument());
    const banner = container.querySelector('#restore-banner')!;
    expect(banner).toHaveTextContent('Reopened 2 tunnels: s1 on 2222, s2 on 40123 (2200 was taken)');
    expect(banner).toHaveTextContent('Dropped s3: the session ended');
    expect(calls.filter((c) => c.cmd === 'restore_tunnels')).toHaveLength(1);
    // Only after the login was restored.
    const order = calls.map((c) => c.cmd);
    expect(order.indexOf('restore_login')).toBeLessThan(order.indexOf('restore_tunnels'));
    await fireEvent.click(container.querySelector('#restore-dismiss')!);
    expect(container.querySelector('#restore-banner')).toBeNull();
  });

  it('shows no banner when nothing was reopened, and never restores without a saved login', async () => {
    const calls = installIpc({ ...base, restore_login: { endpoint: 'https://x', mode: 'session', user: 'me' } });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('[data-testid=session-row]')).toBeInTheDocument());
    expect(container.querySelector('#restore-banner')).toBeNull();
    expect(calls.some((c) => c.cmd === 'restore_tunnels')).toBe(true);

    const none = installIpc({ ...base, restore_login: null });
    const second = render(App);
    await waitFor(() => expect(second.container.querySelector('#login-button')).toBeInTheDocument());
    expect(none.some((c) => c.cmd === 'restore_tunnels')).toBe(false);
  });

  it('shows the TLS state of the login in the header', async () => {
    const cases: [object, string | null][] = [
      [{ scheme: 'https', insecure: true, caFile: null, warning: null }, 'TLS not verified'],
      [{ scheme: 'https', insecure: false, caFile: '/etc/ca.pem', warning: null }, 'custom CA'],
      [{ scheme: 'http', insecure: false, caFile: null, warning: 'http://x is plain http' }, 'not encrypted'],
      [{ scheme: 'https', insecure: false, caFile: null, warning: null }, null],
    ];
    for (const [tls, text] of cases) {
      installIpc({ ...base, restore_login: { endpoint: 'https://x', mode: 'session', user: 'me', tls } });
      const { container, unmount } = render(App);
      await waitFor(() => expect(container.querySelector('#whoami')).toBeInTheDocument());
      const pill = container.querySelector('#tls-state');
      if (text === null) expect(pill).toBeNull();
      else expect(pill).toHaveTextContent(text);
      unmount();
    }
  });

  it('explains a failed restore on the login screen', async () => {
    installIpc({ ...base, restore_login: () => fail('Unreachable', 'connection refused') });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('#login-notice')).toHaveTextContent('connection refused'));
  });

  it('goes back to login when the login expired', async () => {
    installIpc({ ...base, restore_login: { endpoint: 'https://x', mode: 'api', user: 'AK' }, list_sessions: () => fail('LoginRequired', 'session expired') });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('#login-notice')).toHaveTextContent('Your login has expired'));
  });

  it('re-fetches tunnels on the tunnels-changed event', async () => {
    let tunnels: unknown[] = [];
    const calls = installIpc({ ...base, restore_login: { endpoint: 'https://x', mode: 'api', user: 'AK' }, list_tunnels: () => tunnels });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('#tunnels-empty')).toBeInTheDocument());
    await waitFor(() => expect(calls.some((c) => c.cmd === 'plugin:event|listen' || c.cmd === 'list_tunnels')).toBe(true));
    tunnels = [tunnelStatus()];
    await new Promise((r) => setTimeout(r, 50));
    await emit('tunnels-changed', null);
    await waitFor(() => expect(container.querySelector('[data-testid=tunnel-row]')).toBeInTheDocument(), { timeout: 1000 });
  });

  it('opens the SSH dialog and preferences, marking the background inert', async () => {
    installIpc({ ...base, restore_login: { endpoint: 'https://x', mode: 'api', user: 'AK' }, open_ssh: () => new Promise(() => {}) });
    const { container } = render(App);
    await waitFor(() => expect(container.querySelector('[data-session=train-gpu] [data-testid=ssh-button]')).toBeInTheDocument());
    await fireEvent.click(container.querySelector('[data-session=train-gpu] [data-testid=ssh-button]')!);
    expect(document.querySelector('#ssh-dialog')).toBeInTheDocument();
    expect(container.querySelector<HTMLElement>('.shell')!.inert).toBe(true);
    await fireEvent.keyDown(window, { key: 'Escape' });
    expect(document.querySelector('#ssh-dialog')).toBeNull();
    await fireEvent.click(container.querySelector('#prefs-button')!);
    expect(document.querySelector('#prefs-dialog')).toBeInTheDocument();
  });
});
