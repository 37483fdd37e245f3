import { fireEvent, render, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import Preferences from './Preferences.svelte';
import { fail, installIpc } from '../test/ipc';
import type { AccountKeyView } from '../lib/api';

const settings = { preferredSshPort: null, refreshSeconds: 30, account: 'work' };

function setup(handler: (args: Record<string, unknown>) => unknown = ({ settings }) => settings) {
  const all = installIpc({ set_settings: handler, account_keypair: null });
  // The keypair section loads on open; these tests are about the settings form.
  const calls = {
    get length() {
      return all.filter((c) => c.cmd === 'set_settings').length;
    },
    at: (i: number) => all.filter((c) => c.cmd === 'set_settings')[i],
  };
  const onsaved = vi.fn();
  const onclose = vi.fn();
  const r = render(Preferences, { settings, onsaved, onclose });
  const $ = (sel: string) => r.container.querySelector<HTMLInputElement>(sel)!;
  return { calls, all, onsaved, onclose, $, ...r };
}

describe('Preferences', () => {
  it('starts from the current settings, blank port meaning random', () => {
    const { $ } = setup();
    expect($('#pref-port').value).toBe('');
    expect($('#pref-port').placeholder).toBe('random');
    expect($('#pref-refresh').value).toBe('30');
    expect($('#pref-account').value).toBe('work');
    expect($('#pref-port-help').textContent).toMatch(/Leave blank to\s+auto-assign/);
    expect($('#pref-port-help').textContent).toMatch(/10000–65000 recommended/);
  });

  it.each(['80', '1024', '65535', 'abc', '10.5'])('rejects port %s without calling the backend', async (port) => {
    const { $, calls, onsaved } = setup();
    await fireEvent.input($('#pref-port'), { target: { value: port } });
    await fireEvent.click($('#pref-save'));
    expect($('#pref-error')).toHaveTextContent(/1025/);
    expect($('#pref-port')).toHaveAttribute('aria-invalid', 'true');
    expect(calls.length).toBe(0);
    expect(onsaved).not.toHaveBeenCalled();
  });

  it('saves a valid port, interval and account', async () => {
    const { $, calls, onsaved } = setup();
    await fireEvent.input($('#pref-port'), { target: { value: ' 10022 ' } });
    await fireEvent.input($('#pref-refresh'), { target: { value: '15' } });
    await fireEvent.input($('#pref-account'), { target: { value: 'root' } });
    expect($('#pref-pin').checked).toBe(false);
    await fireEvent.click($('#pref-pin'));
    await fireEvent.click($('#pref-save'));
    const expected = { preferredSshPort: 10022, refreshSeconds: 15, account: 'root', pinHostKeys: true, restoreTunnels: true, keepInTray: true, startAtLogin: false };
    await waitFor(() => expect(onsaved).toHaveBeenCalledWith(expected));
    expect(calls.at(0)).toEqual({ cmd: 'set_settings', args: { settings: expected } });
  });

  it('reopening tunnels at start is on by default and can be turned off', async () => {
    const { $, calls, onsaved } = setup();
    expect($('#pref-restore').checked).toBe(true);
    expect($('#pref-restore-help').textContent).toMatch(/same ports/);
    await fireEvent.click($('#pref-restore'));
    await fireEvent.click($('#pref-save'));
    await waitFor(() => expect(onsaved).toHaveBeenCalled());
    expect(calls.at(0).args).toEqual({ settings: { ...settings, pinHostKeys: false, restoreTunnels: false, keepInTray: true, startAtLogin: false } });
  });

  it('keeping bai in the tray is on by default, start at login off; both can be changed', async () => {
    const { $, calls, onsaved } = setup();
    expect($('#pref-tray').checked).toBe(true);
    expect($('#pref-autostart').checked).toBe(false);
    expect($('#pref-tray').closest('label')).toHaveTextContent('Keep running in the tray when the window is closed (while tunnels are open)');
    expect($('#pref-autostart').closest('label')).toHaveTextContent('Start bai at login');
    await fireEvent.click($('#pref-tray'));
    await fireEvent.click($('#pref-autostart'));
    await fireEvent.click($('#pref-save'));
    await waitFor(() => expect(onsaved).toHaveBeenCalled());
    expect(calls.at(0).args).toEqual({ settings: { ...settings, pinHostKeys: false, restoreTunnels: true, keepInTray: false, startAtLogin: true } });
  });

  it('shows saved tray and login choices', () => {
    installIpc({ set_settings: ({ settings }: Record<string, unknown>) => settings, account_keypair: null });
    const r = render(Preferences, { settings: { ...settings, keepInTray: false, startAtLogin: true }, onsaved: vi.fn(), onclose: vi.fn() });
    expect(r.container.querySelector<HTMLInputElement>('#pref-tray')!.checked).toBe(false);
    expect(r.container.querySelector<HTMLInputElement>('#pref-autostart')!.checked).toBe(true);
  });

  it('shows a saved "off" as unchecked', () => {
    installIpc({ set_settings: ({ settings }: Record<string, unknown>) => settings, account_keypair: null });
    const r = render(Preferences, { settings: { ...settings, restoreTunnels: false }, onsaved: vi.fn(), onclose: vi.fn() });
    expect(r.container.querySelector<HTMLInputElement>('#pref-restore')!.checked).toBe(false);
  });

  it('warns (but allows) ports outside the recommended range', async () => {
    const { $, onsaved } = setup();
    await fireEvent.input($('#pref-port'), { target: { value: '2222' } });
    expect($('#pref-port-warning')).toHaveTextContent('10000–65000 is recommended');
    await fireEvent.click($('#pref-save'));
    await waitFor(() => expect(onsaved).toHaveBeenCalled());
  });

  it('validates the interval and account', async () => {
    const { $, calls } = setup();
    await fireEvent.input($('#pref-refresh'), { target: { value: '1' } });
    await fireEvent.input($('#pref-account'), { target: { value: '' } });
    await fireEvent.click($('#pref-save'));
    expect($('#pref-error')).toHaveTextContent('Auto-refresh must be 0 (off) or between 5 and 3600 seconds.');
    expect($('#pref-error')).toHaveTextContent('Account must not be empty');
    expect(calls.length).toBe(0);
  });

  it('shows the backend’s InvalidInput message', async () => {
    const { $, onsaved } = setup(() => fail('InvalidInput', 'port 20000 is outside WSPROXY_PORT_POOL'));
    await fireEvent.input($('#pref-port'), { target: { value: '20000' } });
    await fireEvent.click($('#pref-save'));
    await waitFor(() => expect($('#pref-error')).toHaveTextContent('port 20000 is outside WSPROXY_PORT_POOL'));
    expect(onsaved).not.toHaveBeenCalled();
  });

  it('closes on Escape and Cancel', async () => {
    const { $, onclose } = setup();
    await fireEvent.keyDown(window, { key: 'Escape' });
    await fireEvent.click($('#pref-cancel'));
    expect(onclose).toHaveBeenCalledTimes(2);
  });

  describe('SSH keypair', () => {
    const stored: AccountKeyView = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStored me@laptop', fingerprint: 'SHA256:storedFingerprint' };
    const generated: AccountKeyView = { publicKey: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQNew', fingerprint: 'SHA256:newFingerprint' };

    function open(handlers: Record<string, unknown>) {
      const calls = installIpc({ set_settings: ({ settings }: Record<string, unknown>) => settings, ...handlers } as Parameters<typeof installIpc>[0]);
      const r = render(Preferences, { settings, onsaved: vi.fn(), onclose: vi.fn() });
      const $ = (sel: string) => r.container.querySelector<HTMLElement>(sel);
      return { calls, $, ...r };
    }

    it('shows the stored public key with its fingerprint and a copy button', async () => {
      const { $, calls } = open({ account_keypair: stored });
      await waitFor(() => expect($('#keypair-public')).toHaveTextContent(stored.publicKey));
      expect(calls[0].cmd).toBe('account_keypair');
      expect($('#keypair-fingerprint')).toHaveTextContent('SHA256:storedFingerprint');
      expect($('#copy-keypair')).toBeInTheDocument();
      expect($('#keypair-none')).toBeNull();
    });

    it('says clearly when there is no keypair', async () => {
      const { $ } = open({ account_keypair: null });
      await waitFor(() => expect($('#keypair-none')).toHaveTextContent('No keypair'));
      expect($('#keypair-public')).toBeNull();
    });

    it('generates a new pair only after a confirmation about new sessions', async () => {
      const { $, calls } = open({ account_keypair: stored, generate_keypair: generated });
      await waitFor(() => expect($('#keypair-public')).toBeInTheDocument());
      await fireEvent.click($('#keypair-generate')!);
      expect($('#keypair-confirm')).toHaveTextContent(/created from now on/);
      expect(calls.some((c) => c.cmd === 'generate_keypair')).toBe(false);
      await fireEvent.click($('#keypair-confirm-no')!);
      expect($('#keypair-confirm')).toBeNull();
      await fireEvent.click($('#keypair-generate')!);
      await fireEvent.click($('#keypair-confirm-yes')!);
      await waitFor(() => expect($('#keypair-public')).toHaveTextContent(generated.publicKey));
      expect($('#keypair-fingerprint')).toHaveTextContent('SHA256:newFingerprint');
      expect($('#keypair-notice')).toHaveTextContent('from now on');
      expect(document.body.textContent).not.toMatch(/PRIVATE KEY/);
    });

    it('uploads through the native dialog; cancelling changes nothing', async () => {
      let answer: AccountKeyView | null = null;
      const { $, calls } = open({ account_keypair: null, upload_keypair: () => answer });
      await waitFor(() => expect($('#keypair-none')).toBeInTheDocument());
      await fireEvent.click($('#keypair-upload')!);
      await waitFor(() => expect(calls.filter((c) => c.cmd === 'upload_keypair')).toHaveLength(1));
      expect(calls.find((c) => c.cmd === 'upload_keypair')!.args).toEqual({});
      expect($('#keypair-none')).toBeInTheDocument();
      expect($('#keypair-notice')).toBeNull();
      answer = stored;
      await fireEvent.click($('#keypair-upload')!);
      await waitFor(() => expect($('#keypair-public')).toHaveTextContent(stored.publicKey));
      expect($('#keypair-notice')).toHaveTextContent('uploaded');
    });

    it("shows the server's refusal with its message", async () => {
      const { $ } = open({
        account_keypair: stored,
        upload_keypair: () => fail('InvalidInput', 'The SSH keypair was refused: the public key does not match the private key'),
      });
      await waitFor(() => expect($('#keypair-public')).toBeInTheDocument());
      await fireEvent.click($('#keypair-upload')!);
      await waitFor(() => expect($('#keypair-error')).toHaveTextContent('does not match the private key'));
      expect($('#keypair-public')).toHaveTextContent(stored.publicKey);
    });

    it('shows why the keypair could not be loaded', async () => {
      const { $ } = open({ account_keypair: () => fail('Unreachable', 'could not connect to the server') });
      await waitFor(() => expect($('#keypair-error')).toHaveTextContent('could not connect'));
      expect($('#keypair-none')).toBeNull();
    });
  });
});
