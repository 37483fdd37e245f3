import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import Login from './Login.svelte';
import { fail, installIpc } from '../test/ipc';

const info = { version: '0.1.0', sandbox: null };

function setup(loginHandler: (args: Record<string, unknown>) => unknown, extra: Partial<typeof info> = {}) {
  const calls = installIpc({ login: loginHandler });
  const onlogin = vi.fn();
  const r = render(Login, { info: { ...info, ...extra }, onlogin });
  return { calls, onlogin, ...r };
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
    ['BadUrl', 'The server address is not valid.'],
    ['Unreachable', 'Could not reach the server. Check the address and your network connection.'],
    ['Tls', 'Secure connection failed: the server’s TLS certificate could not be verified.'],
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
});
