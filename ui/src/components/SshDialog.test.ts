import { fireEvent, render, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import SshDialog from './SshDialog.svelte';
import { fail, installIpc, tunnel } from '../test/ipc';

describe('SshDialog', () => {
  it('shows progress, then the connection info and commands', async () => {
    let release!: (v: unknown) => void;
    const calls = installIpc({ open_ssh: () => new Promise((r) => (release = r)) });
    const onchanged = vi.fn();
    const { container } = render(SshDialog, { session: 'train-gpu', account: 'work', onclose: vi.fn(), onchanged });
    const dialog = container.querySelector('#ssh-dialog')!;
    expect(dialog).toHaveAttribute('role', 'dialog');
    expect(dialog).toHaveAttribute('aria-modal', 'true');
    expect(container.querySelector('#ssh-progress')).toHaveTextContent('Starting local proxy…');
    await waitFor(() => expect(container.querySelector('#ssh-progress')).toHaveTextContent('Waiting for sshd…'), { timeout: 2500 });
    const t = tunnel();
    release(t);
    await waitFor(() => expect(container.querySelector('#ssh-port')).toHaveTextContent('10022'));
    expect(calls[0]).toEqual({ cmd: 'open_ssh', args: { session: 'train-gpu', account: 'work' } });
    expect(container.querySelector('#ssh-user')).toHaveTextContent('work');
    expect(container.querySelector('#ssh-host')).toHaveTextContent('127.0.0.1');
    expect(container.querySelector('#sftp-url')).toHaveTextContent('sftp://work@127.0.0.1:10022');
    for (const k of ['ssh', 'sftp', 'scp', 'rsync'] as const) {
      expect(container.querySelector(`#cmd-${k}`)!.textContent).toBe(t.commands[k]);
      expect(container.querySelector(`#copy-${k}`)).toBeInTheDocument();
    }
    expect(container.querySelector('#vscode-config')!.textContent).toBe(t.vscodeConfig);
    expect(container.querySelector('#open-vscode')).toHaveAttribute('href', t.vscodeUrl);
    expect(container.querySelector('#fallback-notice')).toBeNull();
    expect(container.querySelector('#save-key')).toHaveTextContent('Download SSH key (id_container)');
    expect(container.querySelector('#save-ppk')).toHaveTextContent('Save as PuTTY .ppk');
    expect(onchanged).toHaveBeenCalled();
  });

  it('lets the account be changed for this session', async () => {
    const t = tunnel();
    const alice = { ...t, user: 'alice', sftpUrl: 'sftp://alice@127.0.0.1:10022' };
    const calls = installIpc({
      open_ssh: (args: unknown) => ((args as { account?: string }).account === 'alice' ? alice : t),
    });
    const { container } = render(SshDialog, { session: 'train-gpu', account: 'work', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#ssh-user')).toHaveTextContent('work'));
    const input = container.querySelector('#ssh-user-input') as HTMLInputElement;
    expect(input.value).toBe('work');
    expect(container.querySelector('#ssh-user-apply')).toBeDisabled();
    await fireEvent.input(input, { target: { value: 'alice' } });
    await fireEvent.click(container.querySelector('#ssh-user-apply')!);
    await waitFor(() => expect(container.querySelector('#ssh-user')).toHaveTextContent('alice'));
    expect(container.querySelector('#sftp-url')).toHaveTextContent('sftp://alice@127.0.0.1:10022');
    expect(calls.at(-1)).toEqual({ cmd: 'open_ssh', args: { session: 'train-gpu', account: 'alice' } });
  });

  it('copies exactly the shown text through the clipboard plugin', async () => {
    const t = tunnel();
    const calls = installIpc({ open_ssh: t, 'plugin:clipboard-manager|write_text': null });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#copy-rsync')).toBeInTheDocument());
    const btn = container.querySelector('#copy-rsync')!;
    await fireEvent.click(btn);
    await waitFor(() => expect(btn).toHaveTextContent('Copied'));
    const clip = calls.find((c) => c.cmd === 'plugin:clipboard-manager|write_text')!;
    expect(clip.args.text).toBe(container.querySelector('#cmd-rsync')!.textContent);
    expect(clip.args.text).toBe(t.commands.rsync);
    expect(calls[0].args).toEqual({ session: 'train-gpu' }); // no account given -> not sent
  });

  it('opens VS Code through the opener plugin', async () => {
    const t = tunnel();
    let fails = false;
    const calls = installIpc({ open_ssh: t, 'plugin:opener|open_url': () => (fails ? fail('Unknown', 'no handler for vscode://') : null) });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#open-vscode')).toBeInTheDocument());
    await fireEvent.click(container.querySelector('#open-vscode')!);
    await waitFor(() => expect(calls.some((c) => c.cmd === 'plugin:opener|open_url')).toBe(true));
    expect(calls.find((c) => c.cmd === 'plugin:opener|open_url')!.args.url).toBe(t.vscodeUrl);
    fails = true;
    await fireEvent.click(container.querySelector('#open-vscode')!);
    await waitFor(() => expect(container.querySelector('#open-vscode-error')).toHaveTextContent('no handler for vscode://'));
  });

  it('names both ports when the preferred port was taken', async () => {
    installIpc({ open_ssh: tunnel({ port: 41234, preferredPort: 10022, fallback: { preferred: 10022, reason: 'address in use' } }) });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    const notice = await waitFor(() => {
      const n = container.querySelector('#fallback-notice');
      expect(n).not.toBeNull();
      return n!;
    });
    expect(notice).toHaveTextContent('Your preferred port 10022 was not available, so port 41234 was assigned instead.');
    expect(notice).toHaveTextContent('address in use');
  });

  it('explains that the user’s own key is used without id_container', async () => {
    installIpc({ open_ssh: tunnel({ hasIdContainer: false }) });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#no-id-container')).toBeInTheDocument());
    expect(container.querySelector('#no-id-container')).toHaveTextContent('no id_container key');
    expect(container.querySelector('#no-id-container')).toHaveTextContent('.ssh');
    expect(container.querySelector('#save-key')).toBeNull();
    expect(container.querySelector('#save-ppk')).toBeNull();
  });

  it('keeps the dialog when the session key is unusable, with one line saying why', async () => {
    installIpc({ open_ssh: tunnel({ hasIdContainer: false, keyProblem: 'the key file holds no PEM/OpenSSH key' }) });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#key-problem')).toBeInTheDocument());
    expect(container.querySelector('#key-problem')).toHaveTextContent('holds no PEM/OpenSSH key');
    expect(container.querySelector('#cmd-ssh')).toBeInTheDocument();
    expect(container.querySelector('#ssh-error')).toBeNull();
  });

  it('flags a saved key that is no longer this session\'s', async () => {
    installIpc({ open_ssh: tunnel({ keyStale: 'The key you saved on 2026-11-30 10:00 at /tmp/k is no longer this session\'s key: download it again.' }) });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#key-stale')).toBeInTheDocument());
    expect(container.querySelector('#key-stale')).toHaveTextContent('download it again');
    expect(container.querySelector('#save-key')).toBeInTheDocument();
  });

  it('saves the key, then shows commands using the saved path', async () => {
    const calls = installIpc({
      open_ssh: tunnel(),
      save_key: ({ format }) => ({ path: format === 'ppk' ? '/home/me/id_container.ppk' : '/home/me/.ssh/id_container' }),
      tunnel_info: tunnel({
        keyPath: '/home/me/.ssh/id_container',
        commands: { ...tunnel().commands, ssh: 'ssh -i /home/me/.ssh/id_container -p 10022 work@127.0.0.1' },
      }),
    });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#save-key')).toBeInTheDocument());
    await fireEvent.click(container.querySelector('#save-key')!);
    await waitFor(() => expect(container.querySelector('#key-saved')).toHaveTextContent('Key saved to /home/me/.ssh/id_container'));
    expect(container.querySelector('#cmd-ssh')).toHaveTextContent('-i /home/me/.ssh/id_container');
    expect(container.querySelector('#key-path')).toHaveTextContent('/home/me/.ssh/id_container');
    expect(calls.find((c) => c.cmd === 'save_key')!.args).toEqual({ session: 'train-gpu', format: 'openssh' });

    await fireEvent.click(container.querySelector('#save-ppk')!);
    await waitFor(() => expect(container.querySelector('#key-saved')).toHaveTextContent('PuTTY key saved to /home/me/id_container.ppk'));
    expect(calls.filter((c) => c.cmd === 'save_key').at(-1)!.args).toEqual({ session: 'train-gpu', format: 'ppk' });
  });

  it('does nothing visible when the save dialog is cancelled', async () => {
    const calls = installIpc({ open_ssh: tunnel(), save_key: null });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#save-key')).toBeInTheDocument());
    await fireEvent.click(container.querySelector('#save-key')!);
    await waitFor(() => expect(container.querySelector('#save-key')).toBeEnabled());
    expect(container.querySelector('#key-saved')).toBeNull();
    expect(container.querySelector('#key-error')).toBeNull();
    expect(calls.some((c) => c.cmd === 'tunnel_info')).toBe(false);
  });

  it('shows the server’s reason on failure and can retry', async () => {
    let ok = false;
    installIpc({ open_ssh: () => (ok ? tunnel() : fail('AppNotFound', 'sshd is not in service_ports')) });
    const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#ssh-error')).toHaveTextContent('sshd is not in service_ports'));
    expect(container.querySelector('#ssh-error')).toHaveAttribute('data-code', 'AppNotFound');
    ok = true;
    await fireEvent.click(container.querySelector('#ssh-retry')!);
    await waitFor(() => expect(container.querySelector('#ssh-port')).toHaveTextContent('10022'));
  });

  it('uses tunnel_info instead of open_ssh for an existing tunnel', async () => {
    const calls = installIpc({ tunnel_info: tunnel() });
    const { container } = render(SshDialog, { session: 'train-gpu', start: false, onclose: vi.fn() });
    await waitFor(() => expect(container.querySelector('#ssh-port')).toHaveTextContent('10022'));
    expect(calls.map((c) => c.cmd)).toEqual(['tunnel_info']);
  });

  it('closes on Escape and from the close button', async () => {
    installIpc({ open_ssh: tunnel() });
    const onclose = vi.fn();
    const { container } = render(SshDialog, { session: 'train-gpu', onclose });
    await fireEvent.keyDown(window, { key: 'Escape' });
    expect(onclose).toHaveBeenCalledTimes(1);
    await fireEvent.click(container.querySelector('#ssh-close')!);
    expect(onclose).toHaveBeenCalledTimes(2);
  });

  describe('own key (no id_container)', () => {
    const own = '/home/me/.ssh/id_ed25519';
    const withOwn = () =>
      tunnel({
        hasIdContainer: false,
        ownKey: own,
        commands: { ...tunnel().commands, ssh: `ssh -i ${own} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p 10022 work@127.0.0.1` },
      });

    it('says the session uses your own key and picks the private key once', async () => {
      let answer: unknown = null;
      const calls = installIpc({ open_ssh: tunnel({ hasIdContainer: false, commands: { ...tunnel().commands, ssh: 'ssh -p 10022 work@127.0.0.1' } }), use_own_key: () => answer });
      const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
      const $ = (sel: string) => container.querySelector(sel);
      await waitFor(() => expect($('#no-id-container')).toHaveTextContent('uses your own SSH key'));
      expect($('#own-key-none')).toBeInTheDocument();
      expect($('#pick-own-key')).toHaveTextContent('Choose your private key…');
      // Cancelled dialog: nothing changes.
      await fireEvent.click($('#pick-own-key')!);
      await waitFor(() => expect(calls.filter((c) => c.cmd === 'use_own_key')).toHaveLength(1));
      expect(calls.find((c) => c.cmd === 'use_own_key')!.args).toEqual({ session: 'train-gpu' });
      expect($('#own-key-path')).toBeNull();
      answer = withOwn();
      await fireEvent.click($('#pick-own-key')!);
      await waitFor(() => expect($('#own-key-path')).toHaveTextContent(own));
      expect($('#cmd-ssh')!.textContent).toContain(`-i ${own}`);
      expect($('#pick-own-key')).toHaveTextContent('Use another private key…');
    });

    it('shows a remembered key, and a refused file with its reason', async () => {
      installIpc({ open_ssh: withOwn(), use_own_key: () => fail('InvalidInput', '/home/me/.ssh/id_ed25519.pub is a public key; pass the private key') });
      const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
      const $ = (sel: string) => container.querySelector(sel);
      await waitFor(() => expect($('#own-key-path')).toHaveTextContent(own));
      await fireEvent.click($('#pick-own-key')!);
      await waitFor(() => expect($('#own-key-error')).toHaveTextContent('is a public key'));
      expect($('#own-key-path')).toHaveTextContent(own);
    });

    it('offers no own-key picker for a session with id_container', async () => {
      installIpc({ open_ssh: tunnel() });
      const { container } = render(SshDialog, { session: 'train-gpu', onclose: vi.fn() });
      await waitFor(() => expect(container.querySelector('#save-key')).toBeInTheDocument());
      expect(container.querySelector('#pick-own-key')).toBeNull();
    });
  });
});
