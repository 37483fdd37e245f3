// Globals the in-page fake backend (mock-backend.js) sets for the Playwright suite.
export {};
declare global {
  interface Window {
    __ipcCalls: { cmd: string; args: Record<string, unknown> }[];
    __e2e: {
      state: { holdTransfers?: boolean; holdDrop?: boolean; transferSteps?: number; [k: string]: unknown };
      traffic(session: string, t?: { active?: number; total?: number; up?: number; down?: number; lastError?: string | null }): boolean;
      /** Simulates files dragged from the desktop onto the window. */
      drop(paths: string[]): Promise<void>;
      /** The visible text of the terminal tab `key` (xterm's DOM rows), or null. */
      terminalText(key: string): string | null;
    };
  }
}
