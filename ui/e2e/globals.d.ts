// Globals the in-page fake backend (mock-backend.js) sets for the Playwright suite.
export {};
declare global {
  interface Window {
    __ipcCalls: { cmd: string; args: Record<string, unknown> }[];
    __e2e: {
      state: unknown;
      traffic(session: string, t?: { active?: number; total?: number; up?: number; down?: number; lastError?: string | null }): boolean;
    };
  }
}
