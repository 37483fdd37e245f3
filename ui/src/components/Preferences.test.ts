import { fireEvent, render, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import Preferences from './Preferences.svelte';
import { fail, installIpc } from '../test/ipc';

const settings = { preferredSshPort: null, refreshSeconds: 30, account: 'work' };

function setup(handler: (args: Record<string, unknown>) => unknown = ({ settings }) => settings) {
  const calls = installIpc({ set_settings: handler });
  const onsaved = vi.fn();
  const onclose = vi.fn();
  const r = render(Preferences, { settings, onsaved, onclose });
  const $ = (sel: string) => r.container.querySelector<HTMLInputElement>(sel)!;
  return { calls, onsaved, onclose, $, ...r };
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
    expect(calls).toHaveLength(0);
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
    const expected = { preferredSshPort: 10022, refreshSeconds: 15, account: 'root', pinHostKeys: true };
    await waitFor(() => expect(onsaved).toHaveBeenCalledWith(expected));
    expect(calls[0]).toEqual({ cmd: 'set_settings', args: { settings: expected } });
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
    expect(calls).toHaveLength(0);
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
});
