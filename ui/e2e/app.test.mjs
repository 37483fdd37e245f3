// Playwright suite: the production build (ui/dist) in headless Chromium with a
// mocked IPC backend (mock-backend.js), under Tauri's strict CSP.
// Run with `npm run test:e2e` (builds first). Screenshots: <repo>/target/ui-screenshots/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
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
