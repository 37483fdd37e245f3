import { fireEvent, render, waitFor, within } from '@testing-library/svelte';
import { emit } from '@tauri-apps/api/event';
import { describe, expect, it, vi } from 'vitest';
import FilesTab from './FilesTab.svelte';
import { fail, installIpc, type Handler } from '../test/ipc';
import { HOME_ENTRIES, emitTransfer, entry, transferView } from '../test/remote';

const rowNames = (c: HTMLElement) => Array.from(c.querySelectorAll<HTMLElement>('[data-testid=file-row]')).map((r) => r.dataset.name);
const row = (c: HTMLElement, name: string) => c.querySelector<HTMLElement>(`[data-testid=file-row][data-name="${name}"]`)!;

function ipc(extra: Record<string, Handler | object | null> = {}) {
  const dirs: Record<string, ReturnType<typeof entry>[]> = {
    '/home/demo': HOME_ENTRIES,
    '/home/demo/data': [entry({ name: 'run-42', kind: 'dir' }), entry({ name: 'a.parquet', size: 2048 })],
    '/home/demo/data/run-42': [entry({ name: 'model.pt' })],
    '/home': [entry({ name: 'work', kind: 'dir' })],
  };
  return installIpc({
    files_home: '/home/demo',
    files_list: (a) => {
      const p = a.path === '/home/demo/latest' ? '/home/demo/data/run-42' : (a.path as string);
      if (!dirs[p]) fail('FileNotFound', `no such folder: ${p}`);
      return { path: p, entries: dirs[p] };
    },
    files_mkdir: null,
    files_rename: null,
    files_delete: null,
    files_upload: [1],
    files_download: [2],
    ...extra,
  });
}

async function mounted(extra: Record<string, Handler | object | null> = {}, props: Record<string, unknown> = {}) {
  const calls = ipc(extra);
  const r = render(FilesTab, { session: 'train-gpu', active: true, ...props });
  await waitFor(() => expect(r.container.querySelector('[data-testid=files-train-gpu][data-path="/home/demo"]')).toBeInTheDocument());
  await waitFor(() => expect(rowNames(r.container).length).toBeGreaterThan(0));
  return { ...r, calls };
}

describe('FilesTab', () => {
  it('starts in the home folder, hides dot files until asked, shows sizes, permissions and link targets', async () => {
    const { container, calls } = await mounted();
    expect(calls.slice(0, 2).map((c) => c.cmd)).toEqual(['files_home', 'files_list']);
    expect(rowNames(container)).toEqual(['data', 'latest', 'results.csv', 'gone']);
    await fireEvent.click(container.querySelector('[data-testid=files-show-hidden]')!);
    expect(rowNames(container)).toEqual(['.ssh', 'data', 'latest', '.bashrc', 'results.csv', 'gone']);
    expect(row(container, 'results.csv')).toHaveTextContent('5.0 MiB');
    expect(row(container, 'results.csv')).toHaveTextContent('-rw-r--r--');
    expect(within(row(container, 'latest')).getByTestId('link-target')).toHaveTextContent('→ data/run-42');
    expect(row(container, 'gone')).toHaveTextContent('broken link');
    expect(within(container.querySelector<HTMLElement>('[data-testid=files-crumbs]')!).getAllByTestId('crumb').map((b) => b.textContent)).toEqual(['/', 'home']);
  });

  it('navigates by double-click, link to folder, breadcrumbs and parent', async () => {
    const { container } = await mounted();
    await fireEvent.dblClick(row(container, 'data'));
    await waitFor(() => expect(rowNames(container)).toEqual(['run-42', 'a.parquet']));
    expect(container.querySelector('[data-testid=files-train-gpu]')).toHaveAttribute('data-path', '/home/demo/data');
    await fireEvent.click(container.querySelector('[data-testid=crumb][data-path="/home/demo"]')!);
    await waitFor(() => expect(rowNames(container)).toContain('latest'));
    await fireEvent.click(within(row(container, 'latest')).getByTestId('file-open'));
    await waitFor(() => expect(rowNames(container)).toEqual(['model.pt']));
    await fireEvent.click(container.querySelector('[data-testid=files-up]')!);
    await waitFor(() => expect(container.querySelector('[data-testid=files-train-gpu]')).toHaveAttribute('data-path', '/home/demo/data'));
    // Enter on a folder's checkbox opens it too
    await waitFor(() => expect(rowNames(container)).toContain('run-42'));
    await fireEvent.keyDown(within(row(container, 'run-42')).getByTestId('file-select'), { key: 'Enter' });
    await waitFor(() => expect(rowNames(container)).toEqual(['model.pt']));
    await fireEvent.click(container.querySelector('[data-testid=files-up]')!);
    await waitFor(() => expect(container.querySelector('[data-testid=files-train-gpu]')).toHaveAttribute('data-path', '/home/demo/data'));
  });

  it('shows a listing error with the hint and retries', async () => {
    let first = true;
    const { container } = await mounted();
    ipc({
      files_list: () => {
        if (first) {
          first = false;
          throw { code: 'SshAuthFailed', message: 'the session refused the key', hint: 'check id_container' };
        }
        return { path: '/home/demo', entries: [] };
      },
    });
    await fireEvent.click(container.querySelector('[data-testid=files-refresh]')!);
    await waitFor(() => expect(container.querySelector('[data-testid=files-error]')).toHaveTextContent('the session refused the key'));
    expect(container.querySelector('[data-testid=files-error]')).toHaveTextContent('check id_container');
    expect(container.querySelector('[data-testid=files-error]')).toHaveAttribute('data-code', 'SshAuthFailed');
    await fireEvent.click(within(container.querySelector<HTMLElement>('[data-testid=files-error]')!).getByText('Retry'));
    await waitFor(() => expect(container.querySelector('[data-testid=files-empty]')).toBeInTheDocument());
  });

  it('creates a folder after validating its name', async () => {
    const { container, calls } = await mounted();
    await fireEvent.click(container.querySelector('[data-testid=files-new-folder]')!);
    const input = container.querySelector<HTMLInputElement>('[data-testid=files-name-input]')!;
    for (const [bad, msg] of [['', 'Enter a name'], ['a/b', '“/”'], ['..', 'not a usable name'], ['data', 'already exists']]) {
      await fireEvent.input(input, { target: { value: bad } });
      await fireEvent.keyDown(input, { key: 'Enter' });
      expect(container.querySelector('[data-testid=files-name-error]')).toHaveTextContent(msg);
    }
    expect(calls.some((c) => c.cmd === 'files_mkdir')).toBe(false);
    await fireEvent.input(input, { target: { value: 'runs' } });
    await fireEvent.keyDown(input, { key: 'Enter' });
    await waitFor(() => expect(calls.find((c) => c.cmd === 'files_mkdir')?.args).toEqual({ session: 'train-gpu', path: '/home/demo/runs' }));
  });

  it('renames the selected item and says when the name is taken', async () => {
    const { container, calls } = await mounted({ files_rename: () => fail('Exists', '/home/demo/new exists') });
    await fireEvent.click(within(row(container, 'results.csv')).getByTestId('file-select'));
    await fireEvent.click(container.querySelector('[data-testid=files-rename]')!);
    const input = container.querySelector<HTMLInputElement>('[data-testid=files-name-input]')!;
    expect(input.value).toBe('results.csv');
    await fireEvent.input(input, { target: { value: 'new' } });
    await fireEvent.keyDown(input, { key: 'Enter' });
    await waitFor(() => expect(container.querySelector('[data-testid=files-name-error]')).toHaveTextContent('“new” already exists here.'));
    expect(calls.find((c) => c.cmd === 'files_rename')?.args).toEqual({ session: 'train-gpu', from: '/home/demo/results.csv', to: '/home/demo/new' });
    await fireEvent.keyDown(input, { key: 'Escape' });
    expect(container.querySelector('[data-testid=files-name-input]')).toBeNull();
  });

  it('deletes a folder only after a confirmation naming it and its contents', async () => {
    const { container, calls } = await mounted();
    await fireEvent.click(within(row(container, 'data')).getByTestId('file-select'));
    await fireEvent.click(container.querySelector('[data-testid=files-delete]')!);
    const dialog = document.querySelector<HTMLElement>('#delete-confirm')!;
    expect(dialog).toHaveAccessibleName('Delete “data”?');
    expect(within(dialog).getByTestId('delete-what')).toHaveTextContent('The folder data and everything in it will be deleted');
    await fireEvent.click(document.querySelector('#delete-cancel')!);
    expect(document.querySelector('#delete-confirm')).toBeNull();
    expect(calls.some((c) => c.cmd === 'files_delete')).toBe(false);
    await fireEvent.click(container.querySelector('[data-testid=files-delete]')!);
    await fireEvent.click(document.querySelector('#delete-confirm-yes')!);
    await waitFor(() => expect(calls.find((c) => c.cmd === 'files_delete')?.args).toEqual({ session: 'train-gpu', path: '/home/demo/data' }));
  });

  it('uploads through the native dialog; on Exists asks "Replace …?" and retries with overwrite', async () => {
    let n = 0;
    const ontransfers = vi.fn();
    const { container, calls } = await mounted(
      {
        files_upload: (a) => {
          n++;
          if (!a.overwrite) fail('Exists', '/home/demo/results.csv already exists in train-gpu.');
          return [5];
        },
      },
      { ontransfers },
    );
    await fireEvent.click(container.querySelector('[data-testid=files-upload]')!);
    await waitFor(() => expect(document.querySelector('#replace-confirm')).toBeInTheDocument());
    expect(document.querySelector('[data-testid=replace-what]')).toHaveTextContent('results.csv already exists');
    await fireEvent.click(document.querySelector('#replace-cancel')!);
    expect(document.querySelector('#replace-confirm')).toBeNull();
    expect(n).toBe(1);
    await fireEvent.click(container.querySelector('[data-testid=files-upload-folder]')!);
    await waitFor(() => expect(document.querySelector('#replace-confirm')).toBeInTheDocument());
    await fireEvent.click(document.querySelector('#replace-yes')!);
    await waitFor(() => expect(ontransfers).toHaveBeenCalledWith([5]));
    expect(calls.filter((c) => c.cmd === 'files_upload').map((c) => c.args)).toEqual([
      { session: 'train-gpu', remoteDir: '/home/demo', localPaths: null, folder: false, overwrite: false },
      { session: 'train-gpu', remoteDir: '/home/demo', localPaths: null, folder: true, overwrite: false },
      { session: 'train-gpu', remoteDir: '/home/demo', localPaths: null, folder: true, overwrite: true },
    ]);
  });

  it('several conflicts: the question counts them and the message names every one', async () => {
    const { container } = await mounted({
      files_upload: () => fail('Exists', '2 items already exist: /home/demo/a.txt, /home/demo/c.txt'),
    });
    await fireEvent.click(container.querySelector('[data-testid=files-upload]')!);
    await waitFor(() => expect(document.querySelector('#replace-confirm')).toBeInTheDocument());
    expect(document.querySelector('#replace-confirm')).toHaveTextContent('Replace 2 items?');
    expect(document.querySelector('[data-testid=replace-what]')).toHaveTextContent('/home/demo/a.txt, /home/demo/c.txt');
  });

  it('downloads the selected items into a folder chosen in Rust; a cancelled dialog says nothing', async () => {
    const ontransfers = vi.fn();
    const { container, calls } = await mounted({ files_download: [] }, { ontransfers });
    const dl = container.querySelector<HTMLButtonElement>('[data-testid=files-download]')!;
    expect(dl).toBeDisabled();
    await fireEvent.click(within(row(container, 'results.csv')).getByTestId('file-select'));
    await fireEvent.click(within(row(container, 'data')).getByTestId('file-select'));
    expect(dl).toHaveTextContent('Download (2)');
    await fireEvent.click(dl);
    await waitFor(() => expect(calls.find((c) => c.cmd === 'files_download')?.args).toEqual({ session: 'train-gpu', remotePaths: ['/home/demo/data', '/home/demo/results.csv'], localDir: null, overwrite: false }));
    expect(ontransfers).not.toHaveBeenCalled();
    expect(container.querySelector('[data-testid=files-action-error]')).toBeNull();
  });

  it('uploads files dropped from the desktop into the folder shown, only in the tab shown', async () => {
    // getCurrentWebview() needs the labels Tauri injects.
    const w = window as unknown as { __TAURI_INTERNALS__: Record<string, unknown> };
    const calls = ipc();
    w.__TAURI_INTERNALS__.metadata = { currentWindow: { label: 'main' }, currentWebview: { windowLabel: 'main', label: 'main' } };
    try {
      const { container, rerender } = render(FilesTab, { session: 'eda', active: false });
      await waitFor(() => expect(container.querySelector('[data-testid=files-eda][data-path="/home/demo"]')).toBeInTheDocument());
      await new Promise((r) => setTimeout(r, 20)); // the listeners register asynchronously
      await emit('tauri://drag-enter', { paths: ['/home/me/a.txt'], position: { x: 1, y: 1 } });
      await emit('tauri://drag-drop', { paths: ['/home/me/a.txt'], position: { x: 1, y: 1 } });
      expect(container.querySelector('[data-testid=files-drop-zone]')).toBeNull();
      await rerender({ session: 'eda', active: true });
      await emit('tauri://drag-enter', { paths: ['/home/me/a.txt'], position: { x: 1, y: 1 } });
      await waitFor(() => expect(container.querySelector('[data-testid=files-drop-zone]')).toBeInTheDocument());
      await emit('tauri://drag-drop', { paths: ['/home/me/a.txt', '/home/me/b'], position: { x: 1, y: 1 } });
      await waitFor(() => expect(container.querySelector('[data-testid=files-drop-zone]')).toBeNull());
      await waitFor(() =>
        expect(calls.filter((c) => c.cmd === 'files_upload').map((c) => c.args)).toEqual([
          { session: 'eda', remoteDir: '/home/demo', localPaths: ['/home/me/a.txt', '/home/me/b'], folder: false, overwrite: false },
        ]),
      );
    } finally {
      delete w.__TAURI_INTERNALS__.metadata;
    }
  });

  it('refreshes when an upload into the folder shown is done', async () => {
    const { calls } = await mounted();
    const lists = () => calls.filter((c) => c.cmd === 'files_list').length;
    const before = lists();
    await emitTransfer(transferView({ state: 'done', target: '/home/demo/dataset.tar.gz' }));
    await waitFor(() => expect(lists()).toBe(before + 1));
  });
});
