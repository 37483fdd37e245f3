import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';
import type { Plugin } from 'vite';

/**
 * The app runs with a frozen `Object.prototype` (tauri.conf.json `freezePrototype`), where
 * assigning `obj.toString = f` to a plain object throws ("the override mistake"). xterm.js's
 * compiled `KeyCode` namespace does exactly that once at load, which blanked the whole page.
 * This rewrites that one assignment into `Object.defineProperty` (same result, allowed under a
 * frozen prototype). The Playwright suite runs with the prototype frozen too, so a new such
 * assignment fails a test instead of the app.
 */
export function xtermFrozenPrototype(): Plugin {
  const assign = /\b([A-Za-z_$][\w$]*)\.toString=([A-Za-z_$][\w$]*);/g;
  return {
    name: 'bai-xterm-frozen-prototype',
    transform(code, id) {
      if (!/@xterm[\\/]xterm[\\/]lib[\\/]xterm\.mjs/.test(id)) return null;
      const out = code.replace(
        assign,
        'Object.defineProperty($1,"toString",{value:$2,writable:!0,configurable:!0,enumerable:!0});',
      );
      return out === code ? null : { code: out, map: null };
    },
  };
}

// Tauri embeds ui/dist (frontendDist). Relative asset URLs keep the build
// working from tauri://localhost and from the e2e static server alike.
export default defineConfig({
  plugins: [svelte(), svelteTesting(), xtermFrozenPrototype()],
  base: './',
  clearScreen: false,
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline scripts or data: URLs for scripts: the app runs under a strict CSP.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test/setup.ts'],
    restoreMocks: true,
  },
});
