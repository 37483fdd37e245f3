import { fireEvent, render, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import About from './About.svelte';
import { fail, installIpc } from '../test/ipc';
import type { AboutView } from '../lib/api';

const LOGGED_IN: AboutView = {
  version: '0.1.0',
  commit: '72dd316d3f06',
  server: {
    endpoint: 'https://backend.example.com',
    mode: 'session',
    apiVersion: 'v8.20240915',
    managerVersion: '24.09.0',
    error: null,
  },
  logDir: '/home/me/.local/share/ai.backend.bai/logs',
};

function setup(answer: AboutView | (() => unknown), more: Record<string, unknown> = {}) {
  const calls = installIpc({ about: answer as never, ...(more as Record<string, never>) });
  const onclose = vi.fn();
  const r = render(About, { onclose });
  const $ = (sel: string) => r.container.ownerDocument.querySelector(sel);
  return { calls, onclose, $, ...r };
}

describe('About', () => {
  it('shows bai’s version and commit and the server’s versions', async () => {
    const { $ } = setup(LOGGED_IN);
    await waitFor(() => expect($('#about-version')).toHaveTextContent('0.1.0'));
    expect($('#about-dialog')).toHaveAttribute('role', 'dialog');
    expect($('#about-dialog-title')).toHaveTextContent('About bai');
    expect($('#about-commit')).toHaveTextContent('72dd316d3f06');
    expect($('#about-server')).toHaveTextContent('https://backend.example.com');
    expect($('#about-server')).toHaveTextContent('web login');
    expect($('#about-manager-version')).toHaveTextContent('24.09.0');
    expect($('#about-api-version')).toHaveTextContent('v8.20240915');
    expect($('#about-log-dir')).toHaveTextContent('/home/me/.local/share/ai.backend.bai/logs');
  });

  it('says when not logged in', async () => {
    const { $ } = setup({ ...LOGGED_IN, server: null });
    await waitFor(() => expect($('#about-server')).toHaveTextContent('Not logged in'));
    expect($('#about-manager-version')).toBeNull();
    expect($('#about-version')).toHaveTextContent('0.1.0');
  });

  it('says why the server’s versions are unknown', async () => {
    const error = 'cannot reach https://backend.example.com/func/: connection refused';
    const { $ } = setup({
      ...LOGGED_IN,
      server: { ...LOGGED_IN.server!, apiVersion: null, managerVersion: null, error },
    });
    await waitFor(() => expect($('#about-server-error')).toHaveTextContent(error));
    expect($('#about-api-version')).toBeNull();
  });

  it('opens the log folder through Rust, without naming a path', async () => {
    const { $, calls } = setup(LOGGED_IN, { open_log_folder: LOGGED_IN.logDir });
    const button = await waitFor(() => {
      const b = $('#about-open-logs');
      expect(b).not.toBeNull();
      return b!;
    });
    await fireEvent.click(button);
    await waitFor(() => expect(calls.some((c) => c.cmd === 'open_log_folder')).toBe(true));
    expect(calls.find((c) => c.cmd === 'open_log_folder')!.args).toEqual({});
    expect($('#about-open-error')).toBeNull();
  });

  it('shows a failure to open the folder', async () => {
    const { $ } = setup(LOGGED_IN, { open_log_folder: () => fail('Io', 'cannot open the folder: no file manager') });
    const button = await waitFor(() => {
      const b = $('#about-open-logs');
      expect(b).not.toBeNull();
      return b!;
    });
    await fireEvent.click(button);
    await waitFor(() => expect($('#about-open-error')).toHaveTextContent('no file manager'));
  });

  it('closes', async () => {
    const { $, onclose } = setup(LOGGED_IN);
    await fireEvent.click($('#about-close')!);
    expect(onclose).toHaveBeenCalled();
  });
});
