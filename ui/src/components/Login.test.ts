import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import Login from './Login.svelte';
import { fail, installIpc, type Call, type Handler } from '../test/ipc';
import type { RecentServer } from '../lib/api';

const info = { version: '0.1.0', sandbox: null };

/** A live view of the calls of one command (the form also asks for the recent servers). */
function only(all: Call[], cmd: string): Call[] {
  return new Proxy([] as Call[], {
    get: (_t, p) => {
      const f = all.filter((c) => c.cmd === cmd);
      const v = Reflect.get(f, p);
      return typeof v === 'function' ? v.bind(f) : v;
    },
  });
}

function setup(
  loginHandler: (args: Record<string, unknown>) => unknown,
  extra: Partial<typeof info> = {},
  recent: RecentServer[] = [],
  more: Record<string, Handler | object | null> = {},
) {
  const all = installIpc({ recent_servers: recent, login: loginHandler, ...more });
  const onlogin = vi.fn();
  const r = render(Login, { info: { ...info, ...extra }, onlogin });
  return { calls: only(all, 'login'), all, onlogin, ...r };
}

function type(el: Element, value: string) {
  return fireEvent.input(el, { target: { value } });
}

async function fillSession(container: HTMLElement, endpoint = 'https://bai.example.com') {
  await type(container.querySelector('#endpoint')!, endpoint);
  await type(container.querySelector('#email')!, 'me@example.com');
  await type(container.querySelector('#password')!, 'hunter2');
}

describe('Login', () => {
  it('validates required fields and the URL before calling login', async () => {
    const { container, calls } = setup(() => ({}));
    await fireEvent.click(container.querySelector('#login-button')!);
    expect(container.querySelector('#endpoint')).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByText(/Enter the server address/)).toBeInTheDocument();
    expect(screen.getByText('Enter your email (or user ID).')).toBeInTheDocument();
    expect(screen.getByText('Enter your password.')).toBeInTheDocument();
    await type(container.querySelector('#endpoint')!, 'not a url');
    await fireEvent.click(container.querySelector('#login-button')!);
    expect(screen.getByText(/is not a valid URL/)).toBeInTheDocument();
    expect(calls).toHaveLength(0);
  });

  it('sends session-mode credentials and reports the new state', async () => {
    const state = { endpoint: 'https://bai.example.com', mode: 'session', user: 'me@example.com', role: 'user' };
    const { container, calls, onlogin } = setup(() => state);
    await fillSession(container);
    await fireEvent.click(container.querySelector('#login-button')!);
    await waitFor(() => expect(onlogin).toHaveBeenCalledWith(state));
    expect(calls[0]).toEqual({
      cmd: 'login',
      args: { endpoint: 'https://bai.example.com', mode: 'session', email: 'me@example.com', password: 'hunter2', remember: true },
    });
    expect(localStorage.length).toBe(0);
    expect(sessionStorage.length).toBe(0);
  });

  it('sends an API keypair in api mode', async () => {
    const { container, calls, onlogin } = setup(() => ({ endpoint: 'https://x.io', mode: 'api', user: 'AKIA' }));
    await fireEvent.click(container.querySelector('#mode-api')!);
    expect(container.querySelector('#email')).toBeNull();
    await type(container.querySelector('#endpoint')!, 'https://x.io');
    await type(container.querySelector('#access-key')!, 'AKIATEST');
    await type(container.querySelector('#secret-key')!, 'sekrit');
    await fireEvent.click(container.querySelector('#remember')!);
    await fireEvent.click(container.querySelector('#login-button')!);
    await waitFor(() => expect(onlogin).toHaveBeenCalled());
    expect(calls[0].args).toEqual({ endpoint: 'https://x.io', mode: 'api', accessKey: 'AKIATEST', secretKey: 'sekrit', remember: false });
  });

  it.each([
    ['BadUrl', 'This server address does not work for this login.'],
    ['Unreachable', 'Could not reach the server. Check the address and your network connection.'],
    ['Tls', 'Secure connection (TLS) to the server failed.'],
    ['AuthFailed', 'Wrong email or password.'],
    ['UnsupportedVersion', 'This Backend.AI server version is not supported.'],
    ['Network', 'A network error occurred while talking to the server.'],
  ])('explains %s', async (code, text) => {
    const { container } = setup(() => fail(code, `server says ${code}`));
    await fillSession(container);
    await fireEvent.click(container.querySelector('#login-button')!);
    const err = await waitFor(() => {
      const e = container.querySelector('#login-error');
      expect(e).not.toBeNull();
      return e!;
    });
    expect(err).toHaveAttribute('role', 'alert');
    expect(err).toHaveAttribute('data-code', code);
    expect(err).toHaveTextContent(text);
    expect(err).toHaveTextContent(`server says ${code}`);
  });

  it('asks for a TOTP code and retries with it', async () => {
    let n = 0;
    const { container, calls, onlogin } = setup((args) => {
      n++;
      if (!args.otp) fail('TotpRequired', 'OTP required');
      if (args.otp !== '123456') fail('TotpRequired', 'Invalid OTP');
      return { endpoint: 'https://bai.example.com', mode: 'session', user: 'me' };
    });
    expect(container.querySelector('#otp')).toBeNull();
    await fillSession(container);
    await fireEvent.click(container.querySelector('#login-button')!);
    await waitFor(() => expect(container.querySelector('#otp')).not.toBeNull());
    expect(container.querySelector('#login-error')).toHaveTextContent('two-factor authentication');
    expect(container.querySelector('#login-error')).toHaveClass('info'); // a question, not a failure
    expect(container.querySelector('#login-button')).toHaveTextContent('Verify and log in');

    // empty code is caught locally
    await fireEvent.click(container.querySelector('#login-button')!);
    expect(screen.getByText('Enter the 6-digit one-time code.')).toBeInTheDocument();
    expect(n).toBe(1);

    await type(container.querySelector('#otp')!, '000000');
    await fireEvent.click(container.querySelector('#login-button')!);
    await waitFor(() => expect(container.querySelector('#login-error')).toHaveTextContent('not accepted'));
    expect(container.querySelector('#login-error')).toHaveClass('error');
    expect(container.querySelector('#login-error')).toHaveTextContent('Invalid OTP');

    await type(container.querySelector('#otp')!, '123456');
    await fireEvent.click(container.querySelector('#login-button')!);
    await waitFor(() => expect(onlogin).toHaveBeenCalled());
    expect(calls.at(-1)!.args.otp).toBe('123456');
  });

  it('offers the demo sandbox when one is running', async () => {
    const { container } = setup(() => ({}), { sandbox: { webserver: 'http://127.0.0.1:8090', email: 'demo@lablup.com' } } as never);
    await fireEvent.click(container.querySelector('#use-sandbox')!);
    expect(container.querySelector('#endpoint')).toHaveValue('http://127.0.0.1:8090');
    expect(container.querySelector('#email')).toHaveValue('demo@lablup.com');
  });

  it('says what the server address is in each mode', async () => {
    const { container } = setup(() => ({}));
    const hint = () => container.querySelector('#endpoint-hint')!;
    const input = () => container.querySelector<HTMLInputElement>('#endpoint')!;
    expect(hint()).toHaveTextContent('web UI’s address (the webserver)');
    expect(hint()).toHaveTextContent('https://backend.example.com');
    expect(input().placeholder).toBe('https://backend.example.com');
    expect(input().getAttribute('aria-describedby')).toContain('endpoint-hint');
    await fireEvent.click(container.querySelector('#mode-api')!);
    expect(hint()).toHaveTextContent('manager’s API endpoint (not the web UI)');
    expect(hint()).toHaveTextContent('https://api.backend.example.com:8081');
    expect(input().placeholder).toBe('https://api.backend.example.com:8081');
    await fireEvent.click(container.querySelector('#mode-session')!);
    expect(hint()).toHaveTextContent('web UI’s address');
  });

  const RECENT: RecentServer[] = [
    { endpoint: 'https://backend.example.com', mode: 'session', user: 'me@example.com' },
    { endpoint: 'https://api.backend.example.com:8081', mode: 'api', user: 'AKIAEXAMPLE' },
  ];

  it('offers the recent servers and fills the form from one', async () => {
    const { container } = setup(() => ({}), {}, RECENT);
    const items = await waitFor(() => {
      const li = container.querySelectorAll('#recent-servers li');
      expect(li).toHaveLength(2);
      return li;
    });
    expect(items[0]).toHaveTextContent('https://backend.example.com');
    expect(items[0]).toHaveTextContent('me@example.com');
    expect(items[1]).toHaveTextContent('AKIAEXAMPLE');

    await fireEvent.click(items[1].querySelector('.recent-use')!);
    expect(container.querySelector('#endpoint')).toHaveValue('https://api.backend.example.com:8081');
    expect(container.querySelector('#mode-api')).toBeChecked();
    expect(container.querySelector('#access-key')).toHaveValue('AKIAEXAMPLE');
    expect(container.querySelector('#secret-key')).toHaveValue('');

    await fireEvent.click(items[0].querySelector('.recent-use')!);
    expect(container.querySelector('#endpoint')).toHaveValue('https://backend.example.com');
    expect(container.querySelector('#mode-session')).toBeChecked();
    expect(container.querySelector('#email')).toHaveValue('me@example.com');
    expect(container.querySelector('#password')).toHaveValue('');
  });

  it('forgets a recent server with its × button', async () => {
    const { container, all } = setup(() => ({}), {}, RECENT, {
      forget_recent_server: ({ server }: Record<string, unknown>) => RECENT.filter((r) => r.user !== (server as RecentServer).user),
    });
    const forget = await waitFor(() => {
      const b = container.querySelector<HTMLButtonElement>('#recent-servers li .recent-forget');
      expect(b).not.toBeNull();
      return b!;
    });
    expect(forget).toHaveAccessibleName('Forget https://backend.example.com (me@example.com)');
    await fireEvent.click(forget);
    await waitFor(() => expect(container.querySelectorAll('#recent-servers li')).toHaveLength(1));
    expect(container.querySelector('#recent-servers')).not.toHaveTextContent('me@example.com');
    expect(all.find((c) => c.cmd === 'forget_recent_server')?.args).toEqual({ server: RECENT[0] });
    // Forgetting does not touch the form.
    expect(container.querySelector('#endpoint')).toHaveValue('');
  });

  it('shows no recent servers when there are none', async () => {
    const { container, all } = setup(() => ({}));
    await waitFor(() => expect(all.some((c) => c.cmd === 'recent_servers')).toBe(true));
    expect(container.querySelector('#recent-servers')).toBeNull();
  });

  // What the Rust side (bai-core) says for each kind of wrong address, with its hint.
  it.each([
    [
      'a manager in session mode',
      'BadUrl',
      'http://127.0.0.1:8081/ is a Backend.AI manager (the API endpoint), not a webserver: use API mode with an access key and secret key, or enter the web UI’s address for an email/password login',
      'for this address log in with API mode (`bai login --mode api --access-key KEY`; in the app: API keypair), or give the web UI’s address for email/password',
    ],
    [
      'a webserver in API mode',
      'BadUrl',
      'http://127.0.0.1:8090/ is a Backend.AI webserver (the web UI), not the manager API: use session mode (email and password), or enter the manager’s address for access/secret keys',
      'for this address log in with email and password (`bai login --mode session`; in the app: Email and password), or give the manager’s address for an API keypair',
    ],
    [
      'a page that is not Backend.AI',
      'BadUrl',
      'http://127.0.0.1:8000/func/ is not a Backend.AI server, or not its address (got an HTML page, HTTP 200); check the server URL',
      'use the same URL as the web UI (session mode) or the manager’s (API mode)',
    ],
    [
      'an expired certificate',
      'Tls',
      'TLS handshake with https://bai.example.com/func/ failed: the server’s certificate has expired (invalid peer certificate: Expired)',
      'the server’s administrator must renew its certificate (`--insecure` skips the check meanwhile)',
    ],
    [
      'a refused connection',
      'Unreachable',
      'cannot reach http://127.0.0.1:9/func/: connection refused (nothing listens on that port, or a firewall refuses it)',
      'check the port in the address (the web UI’s, or the manager’s for API mode) and that the server is running',
    ],
    [
      'a name that does not resolve',
      'Unreachable',
      'cannot reach http://bai.invalid/func/: the host name does not resolve (DNS lookup failed)',
      'check the host name in the address (a typo?) and your DNS or VPN connection',
    ],
  ])('explains %s with the message and hint from Rust', async (_what, code, message, hint) => {
    const { container } = setup(() => {
      throw { code, message, hint };
    });
    await fillSession(container);
    await fireEvent.click(container.querySelector('#login-button')!);
    const err = await waitFor(() => {
      const e = container.querySelector('#login-error');
      expect(e).not.toBeNull();
      return e!;
    });
    expect(err).toHaveAttribute('data-code', code);
    expect(container.querySelector('#login-error-detail')).toHaveTextContent(message);
    expect(container.querySelector('#login-error-hint')).toHaveTextContent(hint);
  });
});
