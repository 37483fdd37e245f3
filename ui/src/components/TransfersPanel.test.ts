import { fireEvent, render, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import TransfersPanel from './TransfersPanel.svelte';
import { installIpc } from '../test/ipc';
import { emitTransfer, transferView } from '../test/remote';

const rows = (c: HTMLElement) => Array.from(c.querySelectorAll<HTMLElement>('[data-testid=transfer-row]'));

describe('TransfersPanel', () => {
  it('shows each transfer with a progress bar, bytes, speed, ETA and state, updated by events', async () => {
    installIpc({ transfer_list: [transferView(), transferView({ id: 2, name: 'b.bin', state: 'queued', bytes: 0, bytesPerSec: 0, etaSecs: null })] });
    const { container } = render(TransfersPanel, {});
    await waitFor(() => expect(rows(container)).toHaveLength(2));
    const r = within(rows(container)[0]);
    expect(r.getByTestId('transfer-bytes')).toHaveTextContent('12 MiB of 48 MiB (25%)');
    expect(r.getByTestId('transfer-speed')).toHaveTextContent('6.0 MiB/s');
    expect(r.getByTestId('transfer-eta')).toHaveTextContent('6 s left');
    expect(r.getByTestId('transfer-progress')).toHaveAttribute('value', '25');
    expect(r.getByTestId('transfer-progress')).toHaveAccessibleName('dataset.tar.gz: 25%');
    expect(within(rows(container)[1]).getByTestId('transfer-state')).toHaveTextContent('Queued');
    expect(container).toHaveTextContent('1 running, 1 queued');

    await emitTransfer(transferView({ bytes: 48 * 1024 * 1024, state: 'done', etaSecs: 0 }));
    await waitFor(() => expect(rows(container)[0]).toHaveAttribute('data-state', 'done'));
    expect(within(rows(container)[0]).queryByTestId('transfer-cancel')).toBeNull();
    expect(within(rows(container)[0]).getByTestId('transfer-progress')).toHaveAttribute('value', '100');
    await emitTransfer(transferView({ id: 3, name: 'new.txt' }));
    await waitFor(() => expect(rows(container)).toHaveLength(3));
  });

  it('shows a failure with its message and hint', async () => {
    installIpc({ transfer_list: [transferView({ state: 'failed', error: { code: 'Io', message: 'disk full', hint: 'free some space' } })] });
    const { container } = render(TransfersPanel, {});
    await waitFor(() => expect(container.querySelector('[data-testid=transfer-error]')).toHaveTextContent(/disk full\s*— free some space/));
  });

  it('cancels a running transfer and clears finished ones', async () => {
    let list = [transferView(), transferView({ id: 2, state: 'done' })];
    const calls = installIpc({
      transfer_list: () => list,
      transfer_cancel: null,
      transfer_clear: () => {
        list = list.filter((t) => t.state === 'running');
        return null;
      },
    });
    const { container } = render(TransfersPanel, {});
    await waitFor(() => expect(rows(container)).toHaveLength(2));
    await fireEvent.click(within(rows(container)[0]).getByTestId('transfer-cancel'));
    await waitFor(() => expect(calls.find((c) => c.cmd === 'transfer_cancel')?.args).toEqual({ id: 1 }));
    await fireEvent.click(container.querySelector('#transfers-clear')!);
    await waitFor(() => expect(rows(container)).toHaveLength(1));
    expect(calls.some((c) => c.cmd === 'transfer_clear')).toBe(true);
  });
});
