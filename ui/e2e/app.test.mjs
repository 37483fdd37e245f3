// Playwright suite: the production build (ui/dist) in headless Chromium with a
// mocked IPC backend (mock-backend.js), under Tauri's strict CSP.
// Run with `npm run test:e2e` (builds first). Screenshots: <repo>/target/ui-screenshots/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from './server.mjs';

const SHOTS = fileURLToPath(new URL('../../target/ui-screenshots/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];

/** @type {import('playwright-core').Browser} */ let browser;
/** @type {{url: string, close: () => Promise<unknown>}} */ let server;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install -y --no-install-recommends chromium, or set CHROMIUM_PATH)`);
  await mkdir(SHOTS, { recursive: true });
  server = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/**
 * A fresh page on the mocked app; collects CSP violations and page errors.
 * @param {string} query
 * @param {{colorScheme?: 'light'|'dark'}} [opts]
 */
async function open(query = '', opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 800 }, colorScheme: opts.colorScheme ?? 'light', locale: 'en-US' });
  // As in the app (tauri.conf.json `freezePrototype`): a library that assigns over a built-in
  // of Object.prototype throws here as it would there.
  await context.addInitScript(() => { Object.freeze(Object.prototype); });
  const page = await context.newPage();
  /** @type {string[]} */ const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(server.url + query);
  return { page, context, problems };
}

/** @param {import('playwright-core').Page} page */
const calls = (page, cmd) => page.evaluate((c) => window.__ipcCalls.filter((x) => !c || x.cmd === c), cmd);
const shot = (page, name) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
/** The whole (scrollable) dialog: grow the viewport for one shot. */
async function dialogShot(page, name) {
  const vp = page.viewportSize();
  await page.setViewportSize({ width: vp.width, height: 1500 });
  await page.locator('.modal').screenshot({ path: `${SHOTS}${name}.png` });
  await page.setViewportSize(vp);
}

describe('bai UI (mock IPC, headless Chromium)', () => {
  test('full flow: login with TOTP → sessions → SSH dialog → copy → key → prefs → tunnels → stop → logout', async () => {
    const { page, context, problems } = await open();
    try {
      // --- login
      await page.waitForSelector('#login-button');
      await shot(page, '01-login');
      await page.click('#login-button');
      assert.match(await page.textContent('#endpoint-error'), /Enter the server address/);

      await page.click('#use-sandbox');
      assert.equal(await page.inputValue('#endpoint'), 'http://127.0.0.1:8090');
      await page.fill('#password', 'wrong');
      await page.click('#login-button');
      await page.waitForSelector('#login-error[data-code=AuthFailed]');
      assert.match(await page.textContent('#login-error'), /Wrong email or password/);
      await shot(page, '02-login-error');

      await page.fill('#password', 'demo-pass');
      await page.click('#login-button');
      await page.waitForSelector('#otp');
      assert.match(await page.textContent('#login-error'), /two-factor/);
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'otp');
      await page.fill('#otp', '123456');
      await shot(page, '03-login-totp');
      await page.click('#login-button');

      // --- session list
      await page.waitForSelector('[data-testid=session-row][data-session=train-gpu]');
      const loginCall = (await calls(page, 'login')).at(-1);
      assert.deepEqual(loginCall.args, { endpoint: 'http://127.0.0.1:8090', mode: 'session', email: 'demo@lablup.com', password: 'demo-pass', otp: '123456', remember: true });
      assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0, 'no secrets in web storage');
      assert.equal(await page.locator('[data-testid=session-row]').count(), 5);
      assert.match(await page.textContent('#whoami'), /demo@lablup\.com/);

      const pending = page.locator('[data-testid=session-row][data-session=batch-job] [data-testid=ssh-button]');
      assert.equal(await pending.isDisabled(), true);
      assert.match(await pending.getAttribute('title'), /pending/);
      assert.equal(await page.locator('[data-session=train-gpu] [data-testid=ssh-button]').isEnabled(), true);
      await shot(page, '04-sessions');

      await page.fill('#session-filter', 'nginx');
      assert.deepEqual(await page.locator('[data-testid=session-row]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-session'))), ['web-demo']);
      await page.fill('#session-filter', '');

      // --- SSH dialog
      await page.click('[data-session=train-gpu] [data-testid=ssh-button]');
      await page.waitForSelector('#ssh-dialog #ssh-progress');
      assert.match(await page.textContent('#ssh-progress'), /Starting local proxy/);
      await page.waitForFunction(() => /Waiting for sshd/.test(document.querySelector('#ssh-progress')?.textContent ?? ''));
      await page.waitForSelector('#ssh-port');
      assert.equal((await page.textContent('#ssh-port')).trim(), '41234');
      assert.equal((await page.textContent('#ssh-host')).trim(), '127.0.0.1');
      assert.equal((await page.textContent('#ssh-user')).trim(), 'work');
      assert.equal(await page.locator('#fallback-notice').count(), 0);
      assert.deepEqual((await calls(page, 'open_ssh'))[0].args, { session: 'train-gpu', account: 'work' });
      await shot(page, '05-ssh-dialog');

      // copy: the clipboard plugin gets exactly the shown text
      for (const k of ['ssh', 'sftp', 'scp', 'rsync', 'vscode']) {
        const shown = await page.textContent(k === 'vscode' ? '#vscode-config' : `#cmd-${k}`);
        await page.click(`#copy-${k}`);
        await page.waitForFunction((id) => document.getElementById(id)?.textContent?.includes('Copied'), `copy-${k}`);
        const clip = (await calls(page, 'plugin:clipboard-manager|write_text')).at(-1);
        assert.deepEqual(clip.args, { text: shown }, `clipboard for ${k}`);
      }
      assert.match(await page.textContent('#cmd-ssh'), /^ssh -i \.\/id_container .* -p 41234 work@127\.0\.0\.1$/);
      await page.click('#open-vscode');
      await page.waitForFunction(() => window.__ipcCalls.some((c) => c.cmd === 'plugin:opener|open_url'));
      assert.deepEqual((await calls(page, 'plugin:opener|open_url'))[0].args, { url: 'vscode://vscode-remote/ssh-remote+bai-train-gpu/home/work' });
      assert.equal(new URL(page.url()).protocol, 'http:', 'the app did not navigate away');
      await dialogShot(page, '05b-ssh-dialog-full');

      // save key → commands switch to -i <path>
      await page.click('#save-key');
      await page.waitForSelector('#key-saved');
      assert.match(await page.textContent('#cmd-ssh'), /-i \/home\/demo\/\.ssh\/id_container-train-gpu /);
      assert.deepEqual((await calls(page, 'save_key'))[0].args, { session: 'train-gpu', format: 'openssh' });
      await page.click('#save-ppk');
      await page.waitForFunction(() => /PuTTY key saved/.test(document.querySelector('#key-saved')?.textContent ?? ''));
      await shot(page, '06-ssh-dialog-key-saved');

      // Esc closes; focus goes back to the page
      await page.keyboard.press('Escape');
      await page.waitForSelector('#ssh-dialog', { state: 'detached' });

      // clicking again returns the same tunnel
      await page.click('[data-session=train-gpu] [data-testid=ssh-button]');
      await page.waitForSelector('#ssh-port');
      assert.equal((await page.textContent('#ssh-port')).trim(), '41234');
      await page.click('#ssh-close');

      // --- preferences
      await page.click('#prefs-button');
      await page.waitForSelector('#prefs-dialog');
      // the account's SSH keypair: none yet, then generated after the confirmation
      await page.waitForSelector('#keypair-none');
      await page.click('#keypair-generate');
      await page.waitForSelector('#keypair-confirm');
      assert.match(await page.textContent('#keypair-confirm'), /created from now on/);
      await page.click('#keypair-confirm-yes');
      await page.waitForSelector('#keypair-public');
      assert.match(await page.textContent('#keypair-fingerprint'), /^SHA256:/);
      await shot(page, '06b-prefs-keypair');
      await page.fill('#pref-port', '80');
      await page.click('#pref-save');
      assert.match(await page.textContent('#pref-error'), /1025/);
      await shot(page, '07-prefs-error');
      await page.fill('#pref-port', '10022');
      await page.click('#pref-save');
      await page.waitForSelector('#prefs-dialog', { state: 'detached' });
      assert.deepEqual((await calls(page, 'set_settings')).at(-1).args, { settings: { preferredSshPort: 10022, refreshSeconds: 30, account: 'work', pinHostKeys: false, restoreTunnels: true, keepInTray: true, startAtLogin: false } });

      // preferred port taken → fallback notice naming both ports
      await page.click('[data-session=eda-notebook] [data-testid=ssh-button]');
      await page.waitForSelector('#fallback-notice');
      const notice = await page.textContent('#fallback-notice');
      assert.match(notice, /10022/);
      assert.match(notice, /41235/);
      assert.equal(await page.locator('#no-id-container').count(), 1, 'eda-notebook has no id_container');
      assert.equal(await page.locator('#save-key').count(), 0);
      await shot(page, '08-ssh-dialog-fallback-no-key');
      await dialogShot(page, '08b-ssh-dialog-fallback-full');
      assert.match(await page.textContent('#cmd-ssh'), /^ssh -o StrictHostKeyChecking=no/, 'own key: no -i');
      // pick the own private key once: the commands use it
      await page.click('#pick-own-key');
      await page.waitForSelector('#own-key-path');
      assert.match(await page.textContent('#cmd-ssh'), /^ssh -i \/home\/demo\/\.ssh\/id_ed25519 /);
      await page.keyboard.press('Escape');

      // --- tunnels panel
      await page.waitForSelector('#tunnels-panel [data-testid=tunnel-row][data-session=eda-notebook]');
      assert.equal(await page.locator('#tunnels-panel [data-testid=tunnel-row]').count(), 2);
      await page.evaluate(() => window.__e2e.traffic('train-gpu', { active: 2, total: 7, up: 3 * 1024 * 1024, down: 250 * 1024 * 1024, lastError: 'websocket closed (1013): try again later' }));
      const row = page.locator('[data-testid=tunnel-row][data-session=train-gpu]');
      await page.waitForFunction(() => /2 \/ 7/.test(document.querySelector('[data-testid=tunnel-row][data-session=train-gpu] [data-testid=tunnel-conns]')?.textContent ?? ''));
      assert.match(await row.locator('[data-testid=tunnel-bytes]').textContent(), /↑ 3\.0 MiB.*↓ 250 MiB/s);
      assert.match(await row.locator('[data-testid=tunnel-error]').textContent(), /1013/);
      assert.match(await row.locator('[data-testid=tunnel-port]').textContent(), /127\.0\.0\.1:41234/);
      assert.match(await page.textContent('[data-session=train-gpu] [data-testid=ssh-availability]'), /Tunnel :41234/);
      await shot(page, '09-tunnels');

      await row.locator('[data-testid=stop-tunnel]').click();
      await page.waitForSelector('[data-testid=tunnel-row][data-session=train-gpu]', { state: 'detached' });
      assert.deepEqual((await calls(page, 'stop_tunnel'))[0].args, { session: 'train-gpu' });

      // --- logout
      await page.click('#logout');
      await page.waitForSelector('#login-button');
      assert.equal((await calls(page, 'logout')).length, 1);
      assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);

      assert.deepEqual(problems, [], 'no console errors or CSP violations');
    } finally {
      await context.close();
    }
  });

  test('restored login skips the login screen; dark theme', async () => {
    const { page, context, problems } = await open('?restored=1&sshDelay=100', { colorScheme: 'dark' });
    try {
      await page.waitForSelector('[data-testid=session-row]');
      assert.equal(await page.locator('#login-button').count(), 0);
      const bg = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
      assert.equal(bg, 'rgb(20, 23, 27)', 'dark palette via prefers-color-scheme');
      await shot(page, '10-sessions-dark');
      await page.click('[data-session=train-gpu] [data-testid=ssh-button]');
      await page.waitForSelector('#ssh-port');
      await shot(page, '11-ssh-dialog-dark');
      await page.keyboard.press('Escape');
      await page.click('#prefs-button');
      await page.waitForSelector('#prefs-dialog');
      await shot(page, '12-prefs-dark');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('terminal tabs and the Files view: shell I/O, exit and reconnect, browse, upload with progress, replace, delete', async () => {
    const { page, context, problems } = await open('?restored=1');
    const termText = (key) => page.evaluate((k) => window.__e2e.terminalText(k) ?? '', key);
    const waitTerm = (key, re) => page.waitForFunction(([k, src, flags]) => new RegExp(src, flags).test(window.__e2e.terminalText(k) ?? ''), [key, re.source, re.flags], { timeout: 10_000 });
    try {
      await page.waitForSelector('[data-session=train-gpu] [data-testid=terminal-button]');
      // not running, or no sshd: disabled with the reason
      const pendingTerm = page.locator('[data-session=batch-job] [data-testid=terminal-button]');
      assert.equal(await pendingTerm.isDisabled(), true);
      assert.match(await pendingTerm.getAttribute('title'), /pending/);
      assert.equal(await page.locator('[data-session=web-demo] [data-testid=files-button]').isDisabled(), true);

      // xterm's DOM renderer adds <style> elements at run time: that needs style-src 'unsafe-inline'
      // to stay in force, which an inline <style> in index.html would end (Tauri nonces it).
      assert.doesNotMatch(await readFile(new URL('../dist/index.html', import.meta.url), 'utf8'), /<style/i);

      // --- terminal: output, typed input, UTF-8 and colours
      await page.click('[data-session=train-gpu] [data-testid=terminal-button]');
      await page.waitForSelector('[data-testid=terminal-t1] .xterm-rows');
      await waitTerm('t1', /work@train-gpu:~\$/);
      assert.equal(await page.getAttribute('#tab-t1', 'aria-selected'), 'true');
      assert.equal(await page.textContent('#panel-t1 [data-testid=terminal-title]'), 'work@train-gpu: ~', 'the shell sets the title (OSC 0)');
      assert.equal((await page.textContent('#tab-t1 [data-testid=tab-title]')).trim(), 'train-gpu — 1');
      const open1 = /** @type {{cols: number, rows: number, session: string}} */ ((await calls(page, 'terminal_open'))[0].args);
      const open1Id = Number(await page.getAttribute('[data-testid=terminal-t1]', 'data-terminal-id'));
      assert.equal(open1.session, 'train-gpu');
      assert.ok(open1.cols > 40 && open1.rows > 10, `the terminal was sized before opening (${open1.cols}x${open1.rows})`);
      await page.click('[data-testid=terminal-t1]');
      await page.keyboard.type('echo hello bai\r');
      await waitTerm('t1', /^hello bai$/m);
      await page.keyboard.type('utf8\r');
      await waitTerm('t1', /héllo wörld — ✓ λ → ∑/);
      await page.keyboard.type('ls\r');
      await waitTerm('t1', /notebooks {2}latest/);
      const inputs = (await calls(page, 'terminal_input')).map((c) => c.args.data).join('');
      assert.equal(inputs, 'echo hello bai\rutf8\rls\r', 'keystrokes reach the shell in order');
      await page.locator('#workspace').scrollIntoViewIfNeeded();
      await page.locator('#workspace').screenshot({ path: `${SHOTS}20-terminal.png` });

      // resize follows the window (debounced terminal_resize)
      await page.setViewportSize({ width: 900, height: 800 });
      await page.waitForFunction((cols) => window.__ipcCalls.some((c) => c.cmd === 'terminal_resize' && Number(c.args.cols) < cols), open1.cols);
      const rs = /** @type {{cols: number}} */ ((await calls(page, 'terminal_resize')).at(-1).args);
      assert.ok(rs.cols < open1.cols, `narrower window, fewer columns (${rs.cols} < ${open1.cols})`);
      await page.setViewportSize({ width: 1180, height: 800 });

      // a second terminal on another session, then the exit status and Reconnect
      await page.click('[data-session=eda-notebook] [data-testid=terminal-button]');
      await waitTerm('t2', /work@eda-notebook:~\$/);
      assert.equal(await page.locator('[data-testid=workspace-tab]').count(), 2);
      await page.click('[data-testid=terminal-t2]');
      await page.keyboard.type('exit 3\r');
      await waitTerm('t2', /\[shell exited with status 3\]/);
      await page.waitForSelector('#panel-t2 [data-testid=terminal-reconnect]');
      await page.click('#panel-t2 [data-testid=terminal-reconnect]');
      await page.waitForSelector('[data-testid=terminal-t2][data-state=open]');
      assert.equal((await calls(page, 'terminal_open')).length, 3);
      await page.click('[data-testid=terminal-t2]');
      await page.keyboard.type('drop\r');
      await waitTerm('t2', /\[connection closed: the tunnel to sshd closed/);
      await page.waitForSelector('#panel-t2 [data-testid=terminal-error][data-code=Network]');
      // closing a tab closes its shell; the first terminal keeps its text
      await page.click('[data-key=t2] [data-testid=tab-close]');
      assert.equal(await page.locator('[data-testid=workspace-tab]').count(), 1);
      await page.click('#tab-t1');
      assert.match(await termText('t1'), /hello bai/);

      // --- files: home, hidden files, navigation, breadcrumbs, symlinks
      await page.click('[data-session=train-gpu] [data-testid=files-button]');
      await page.waitForSelector('[data-testid=files-train-gpu][data-path="/home/demo"] [data-testid=file-row][data-name=data]');
      assert.equal(await page.locator('[data-testid=file-row][data-name=".bashrc"]').count(), 0, 'hidden files are hidden');
      await page.check('[data-testid=files-show-hidden]');
      await page.waitForSelector('[data-testid=file-row][data-name=".bashrc"]');
      await page.uncheck('[data-testid=files-show-hidden]');
      assert.match(await page.textContent('[data-testid=file-row][data-name=latest] [data-testid=link-target]'), /→ data\/run-42/);
      await page.dblclick('[data-testid=file-row][data-name=data]');
      await page.waitForSelector('[data-testid=files-train-gpu][data-path="/home/demo/data"]');
      assert.deepEqual(await page.locator('[data-testid=crumb]').evaluateAll((b) => b.map((x) => x.textContent)), ['/', 'home', 'demo']);
      await page.click('[data-testid=crumb][data-path="/home/demo"]');
      await page.waitForSelector('[data-testid=files-train-gpu][data-path="/home/demo"]');
      await page.click('[data-testid=file-row][data-name=latest] [data-testid=file-open]');
      await page.waitForSelector('[data-testid=files-train-gpu][data-path="/home/demo/data/run-42"] [data-testid=file-row][data-name="model.pt"]');
      await page.click('[data-testid=files-up]');
      await page.click('[data-testid=files-up]');
      await page.waitForSelector('[data-testid=files-train-gpu][data-path="/home/demo"]');

      // new folder: validated inline, then created
      await page.click('[data-testid=files-new-folder]');
      await page.fill('[data-testid=files-name-input]', 'a/b');
      await page.keyboard.press('Enter');
      assert.match(await page.textContent('[data-testid=files-name-error]'), /“\/”/);
      await page.fill('[data-testid=files-name-input]', 'experiments');
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-testid=file-row][data-name=experiments]');
      assert.deepEqual((await calls(page, 'files_mkdir'))[0].args, { session: 'train-gpu', path: '/home/demo/experiments' });

      // rename (the new folder is selected)
      assert.equal(await page.isChecked('[data-testid=file-row][data-name=experiments] [data-testid=file-select]'), true);
      await page.click('[data-testid=files-rename]');
      await page.fill('[data-testid=files-name-input]', 'exp-1');
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-testid=file-row][data-name=exp-1]');
      assert.deepEqual((await calls(page, 'files_rename'))[0].args, { session: 'train-gpu', from: '/home/demo/experiments', to: '/home/demo/exp-1' });

      // upload through the (mocked native) dialog: progress with bytes, speed and ETA, then done
      await page.evaluate(() => (window.__e2e.state.holdTransfers = true));
      await page.click('[data-testid=files-upload]');
      await page.waitForSelector('[data-testid=transfer-row][data-direction=upload]');
      assert.deepEqual((await calls(page, 'files_upload'))[0].args, { session: 'train-gpu', remoteDir: '/home/demo', localPaths: null, folder: false, overwrite: false });
      await page.evaluate(() => (window.__e2e.state.holdTransfers = false));
      await page.waitForFunction(() => /\(([2-8]\d)%\)/.test(document.querySelector('[data-testid=transfer-row] [data-testid=transfer-bytes]')?.textContent ?? ''));
      await page.evaluate(() => (window.__e2e.state.holdTransfers = true));
      const row = page.locator('[data-testid=transfer-row]').first();
      assert.match(await row.locator('[data-testid=transfer-bytes]').textContent(), /MiB of 48 MiB/);
      assert.match(await row.locator('[data-testid=transfer-speed]').textContent(), /MiB\/s/);
      assert.match(await row.locator('[data-testid=transfer-eta]').textContent(), /\d+ s left/);
      // a second one by drag and drop from the desktop, highlighted while dragging
      await page.evaluate(() => (window.__e2e.state.holdDrop = true));
      await page.evaluate(() => window.__e2e.drop(['/home/demo/notes.txt', '/home/demo/plot.png', '/home/demo/project']));
      await page.waitForSelector('[data-testid=files-drop-zone]');
      await page.setViewportSize({ width: 1180, height: 1500 });
      await page.evaluate(() => window.scrollTo(0, 0));
      await shot(page, '21-files-drop');
      await page.evaluate(() => (window.__e2e.state.holdDrop = false));
      await page.evaluate(() => window.__e2e.drop(['/home/demo/notes.txt', '/home/demo/plot.png', '/home/demo/project']));
      await page.waitForSelector('[data-testid=files-drop-zone]', { state: 'detached' });
      await page.waitForFunction(() => document.querySelectorAll('[data-testid=transfer-row]').length === 4);
      assert.deepEqual((await calls(page, 'files_upload')).at(-1).args.localPaths, ['/home/demo/notes.txt', '/home/demo/plot.png', '/home/demo/project']);
      // at most 3 at once: the fourth waits
      assert.equal(await page.locator('[data-testid=transfer-row][data-state=queued]').count(), 1);
      await page.evaluate(() => (window.__e2e.state.holdTransfers = false));
      await page.waitForFunction(() => Array.from(document.querySelectorAll('[data-testid=transfer-row][data-state=running] [data-testid=transfer-speed]')).every((e) => /\/s/.test(e.textContent ?? '')));
      await page.evaluate(() => (window.__e2e.state.holdTransfers = true));
      await shot(page, '22-files-transfer');
      await page.evaluate(() => (window.__e2e.state.holdTransfers = false));
      await page.waitForSelector('[data-testid=transfer-row][data-id="1"][data-state=done]');
      await page.waitForSelector('[data-testid=file-row][data-name="dataset.tar.gz"]');

      // uploading it again: "Replace …?" → Cancel sends nothing, Replace retries with overwrite
      await page.click('[data-testid=files-upload]');
      await page.waitForSelector('#replace-confirm');
      assert.equal(await page.textContent('#replace-confirm-title'), 'Replace “dataset.tar.gz”?');
      assert.match(await page.textContent('[data-testid=replace-what]'), /dataset\.tar\.gz already exists/);
      await shot(page, '23-files-replace');
      await page.click('#replace-cancel');
      await page.waitForSelector('#replace-confirm', { state: 'detached' });
      assert.equal((await calls(page, 'files_upload')).length, 3);
      await page.click('[data-testid=files-upload]');
      await page.click('#replace-yes');
      await page.waitForFunction(() => window.__ipcCalls.filter((c) => c.cmd === 'files_upload').length === 5);
      assert.equal((await calls(page, 'files_upload')).at(-1).args.overwrite, true);

      // download a selected file that exists locally: replace asked too; then cancel a running one
      await page.evaluate(() => (window.__e2e.state.holdTransfers = true));
      await page.click('[data-testid=file-row][data-name="results.csv"] td.num'); // a click on the row selects only it
      await page.click('[data-testid=files-download]');
      await page.waitForSelector('#replace-confirm');
      assert.match(await page.textContent('#replace-confirm-title'), /Replace “results\.csv”\?/);
      await page.click('#replace-yes');
      await page.waitForSelector('[data-testid=transfer-row][data-direction=download]');
      assert.deepEqual((await calls(page, 'files_download')).at(-1).args, { session: 'train-gpu', remotePaths: ['/home/demo/results.csv'], localDir: null, overwrite: true });
      const dl = page.locator('[data-testid=transfer-row][data-direction=download]');
      await dl.locator('[data-testid=transfer-cancel]').click();
      await page.waitForSelector('[data-testid=transfer-row][data-direction=download][data-state=cancelled]');
      await page.evaluate(() => (window.__e2e.state.holdTransfers = false));
      await page.waitForFunction(() => Array.from(document.querySelectorAll('[data-testid=transfer-row]')).every((r) => !['queued', 'running'].includes(r.getAttribute('data-state') ?? '')));
      await page.click('#transfers-clear');
      await page.waitForSelector('#transfers-empty');

      // delete, confirmed, naming the folder and its contents
      await page.click('[data-testid=file-row][data-name=exp-1] td.num');
      await page.click('[data-testid=files-delete]');
      await page.waitForSelector('#delete-confirm');
      assert.match(await page.textContent('#delete-confirm-title'), /Delete “exp-1”\?/);
      assert.match(await page.textContent('[data-testid=delete-what]'), /exp-1 and everything in it/);
      await shot(page, '24-files-delete');
      await page.click('#delete-confirm-yes');
      await page.waitForSelector('[data-testid=file-row][data-name=exp-1]', { state: 'detached' });
      assert.deepEqual((await calls(page, 'files_delete'))[0].args, { session: 'train-gpu', path: '/home/demo/exp-1' });

      // closing the terminal tab tells the backend
      await page.click('[data-key=t1] [data-testid=tab-close]');
      await page.waitForFunction(() => window.__ipcCalls.some((c) => c.cmd === 'terminal_close'));
      assert.deepEqual((await calls(page, 'terminal_close')).map((c) => c.args), [{ id: open1Id }]);
      assert.deepEqual(problems, [], 'no console errors or CSP violations');
    } finally {
      await context.close();
    }
  });

  test('keyboard: Tab stays inside the dialog, Esc closes and restores focus', async () => {
    const { page, context } = await open('?restored=1&sshDelay=50');
    try {
      await page.waitForSelector('#prefs-button');
      await page.focus('#prefs-button');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#prefs-dialog');
      for (let i = 0; i < 12; i++) {
        await page.keyboard.press('Tab');
        assert.equal(await page.evaluate(() => !!document.activeElement?.closest('#prefs-dialog')), true, `focus left the dialog after ${i + 1} tabs`);
      }
      await page.keyboard.press('Escape');
      await page.waitForSelector('#prefs-dialog', { state: 'detached' });
      // The modal gives focus back on the next task (its opener may still be inert when it
      // unmounts): wait for it rather than race it.
      await page
        .waitForFunction(() => document.activeElement?.id === 'prefs-button', null, { timeout: 2000 })
        .catch(() => {});
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'prefs-button');
    } finally {
      await context.close();
    }
  });
});
