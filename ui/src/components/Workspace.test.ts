import { fireEvent, render, waitFor, within } from '@testing-library/svelte';
import { flushSync } from 'svelte';
import { describe, expect, it, vi } from 'vitest';
import { installIpc } from '../test/ipc';

vi.mock('@xterm/xterm', () => ({
  Terminal: class {
    cols = 80;
    rows = 24;
    loadAddon() {}
    open() {}
    write() {}
    onData() {}
    onTitleChange() {}
    attachCustomKeyEventHandler() {}
    focus() {}
    dispose() {}
  },
}));
vi.mock('@xterm/addon-fit', () => ({ FitAddon: class { fit() {} } }));
vi.mock('@xterm/addon-web-links', () => ({ WebLinksAddon: class {} }));

import Workspace from './Workspace.svelte';

function ipc() {
  let id = 0;
  return installIpc({
    terminal_open: (a) => ({ id: ++id, session: a.session, user: 'work', title: '' }),
    terminal_close: null,
    terminal_resize: null,
    files_home: '/home/demo',
    files_list: { path: '/home/demo', entries: [] },
    transfer_list: [],
  });
}

const tabs = () => Array.from(document.querySelectorAll<HTMLElement>('[role=tab]'));

describe('Workspace', () => {
  it('is empty until a tab is opened', () => {
    ipc();
    const { container } = render(Workspace, {});
    expect(container.querySelector('#workspace')).toBeNull();
    expect(container.querySelector('#transfers-panel')).toBeNull();
  });

  it('numbers terminals per session, selects the new tab, and closes tabs (closing their shells)', async () => {
    const calls = ipc();
    const { component } = render(Workspace, {});
    flushSync(() => component.openTerminal('a'));
    flushSync(() => component.openTerminal('a'));
    flushSync(() => component.openTerminal('b'));
    expect(tabs().map((t) => t.querySelector('[data-testid=tab-title]')?.textContent)).toEqual(['a — 1', 'a — 2', 'b — 1']);
    expect(tabs().map((t) => t.getAttribute('aria-selected'))).toEqual(['false', 'false', 'true']);
    const panel = document.getElementById(tabs()[2].getAttribute('aria-controls')!)!;
    expect(panel).toHaveAttribute('role', 'tabpanel');
    expect(panel).not.toHaveAttribute('hidden');
    expect(document.getElementById(tabs()[0].getAttribute('aria-controls')!)).toHaveAttribute('hidden');
    await waitFor(() => expect(calls.filter((c) => c.cmd === 'terminal_open')).toHaveLength(3));

    // keyboard: arrows move between tabs
    await fireEvent.keyDown(tabs()[2], { key: 'ArrowRight' });
    await waitFor(() => expect(tabs()[0]).toHaveAttribute('aria-selected', 'true'));

    const closeB = within(document.querySelector<HTMLElement>('[data-testid=workspace-tab][data-session=b]')!).getByTestId('tab-close');
    expect(closeB).toHaveAccessibleName('Close b — 1');
    await fireEvent.click(closeB);
    expect(tabs()).toHaveLength(2);
    await waitFor(() => expect(calls.filter((c) => c.cmd === 'terminal_close').map((c) => c.args)).toEqual([{ id: 3 }]));
  });

  it('has one Files tab per session and shows the transfers panel once files were opened', async () => {
    ipc();
    const { component, container } = render(Workspace, {});
    flushSync(() => component.openFiles('a'));
    flushSync(() => component.openTerminal('a'));
    flushSync(() => component.openFiles('a'));
    expect(tabs().map((t) => t.querySelector('[data-testid=tab-title]')?.textContent)).toEqual(['a — Files', 'a — 1']);
    expect(tabs()[0]).toHaveAttribute('aria-selected', 'true');
    await waitFor(() => expect(container.querySelector('#transfers-panel')).toBeInTheDocument());
  });
});
