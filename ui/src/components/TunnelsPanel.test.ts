import { fireEvent, render, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import TunnelsPanel from './TunnelsPanel.svelte';
import { fail, installIpc, tunnelStatus } from '../test/ipc';

describe('TunnelsPanel', () => {
  it('shows the empty state', () => {
    installIpc({});
    const { container } = render(TunnelsPanel, { tunnels: [], ondetails: vi.fn(), onstopped: vi.fn() });
    expect(container.querySelector('#tunnels-empty')).toBeInTheDocument();
  });

  it('lists each tunnel with port, connections, traffic, age and last error', () => {
    installIpc({});
    const tunnels = [
      tunnelStatus(),
      tunnelStatus({ session: 'other', port: 41000, active: 0, total: 1, bytesUp: 0, bytesDown: 2048, lastError: 'websocket closed: 1013' }),
    ];
    const { container } = render(TunnelsPanel, { tunnels, ondetails: vi.fn(), onstopped: vi.fn() });
    const rows = container.querySelectorAll<HTMLElement>('[data-testid=tunnel-row]');
    expect(rows).toHaveLength(2);
    const r = within(rows[0]);
    expect(rows[0].dataset.session).toBe('train-gpu');
    expect(r.getByTestId('tunnel-port')).toHaveTextContent('127.0.0.1:10022');
    expect(r.getByTestId('tunnel-conns')).toHaveTextContent('2 / 5');
    expect(r.getByTestId('tunnel-bytes')).toHaveTextContent('↑ 1.5 KiB');
    expect(r.getByTestId('tunnel-bytes')).toHaveTextContent('↓ 5.0 MiB');
    expect(rows[0].querySelector('time')).toHaveTextContent('10 minutes ago');
    expect(r.getByTestId('tunnel-error')).toHaveTextContent('—');
    expect(within(rows[1]).getByTestId('tunnel-error')).toHaveTextContent('websocket closed: 1013');
  });

  it('stops a tunnel and asks for a refresh', async () => {
    const calls = installIpc({ stop_tunnel: null });
    const onstopped = vi.fn();
    const { container } = render(TunnelsPanel, { tunnels: [tunnelStatus()], ondetails: vi.fn(), onstopped });
    await fireEvent.click(container.querySelector('[data-testid=stop-tunnel]')!);
    await waitFor(() => expect(onstopped).toHaveBeenCalled());
    expect(calls).toEqual([{ cmd: 'stop_tunnel', args: { session: 'train-gpu' } }]);
  });

  it('reports stop failures', async () => {
    installIpc({ stop_tunnel: () => fail('SessionNotFound', 'no such tunnel') });
    const { container } = render(TunnelsPanel, { tunnels: [tunnelStatus()], ondetails: vi.fn(), onstopped: vi.fn() });
    await fireEvent.click(container.querySelector('[data-testid=stop-tunnel]')!);
    await waitFor(() => expect(container.querySelector('#stop-error')).toHaveTextContent('no such tunnel'));
  });

  it('opens details for a tunnel', async () => {
    installIpc({});
    const ondetails = vi.fn();
    const { container } = render(TunnelsPanel, { tunnels: [tunnelStatus()], ondetails, onstopped: vi.fn() });
    await fireEvent.click(container.querySelector('[data-testid=tunnel-details]')!);
    expect(ondetails).toHaveBeenCalledWith('train-gpu');
  });

  it('lists app tunnels with their app name and stops only that app', async () => {
    const calls = installIpc({ stop_tunnel: null });
    const onstopped = vi.fn();
    const tunnels = [
      tunnelStatus(),
      tunnelStatus({ app: 'jupyter', protocol: 'http', port: 40001, url: 'http://127.0.0.1:40001/tree' }),
    ];
    const { container } = render(TunnelsPanel, { tunnels, ondetails: vi.fn(), onstopped });
    const rows = Array.from(container.querySelectorAll<HTMLElement>('[data-testid=tunnel-row]'));
    expect(rows.map((r) => within(r).getByTestId('tunnel-app').textContent)).toEqual(['SSH/SFTP', 'jupyter']);
    expect(within(rows[1]).getByTestId('tunnel-port')).toHaveTextContent('127.0.0.1:40001');
    expect(rows[1].querySelector('[data-testid=tunnel-details]')).toBeNull(); // the SSH dialog is for sshd
    await fireEvent.click(within(rows[1]).getByTestId('stop-tunnel'));
    await waitFor(() => expect(onstopped).toHaveBeenCalled());
    expect(calls).toEqual([{ cmd: 'stop_tunnel', args: { session: 'train-gpu', name: 'jupyter' } }]);
  });
});
