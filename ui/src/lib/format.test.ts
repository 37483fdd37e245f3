import { describe, expect, it } from 'vitest';
import { ApiError, toApiError } from './api';
import { formatBytes, loginErrorText, parseAccount, parseEndpoint, parsePreferredPort, parseRefreshSeconds, relativeTime, restoreSummary } from './format';

describe('parsePreferredPort', () => {
  it('blank means random', () => {
    expect(parsePreferredPort('  ')).toEqual({ ok: true, value: null });
  });
  it.each(['1025', '10000', '65000', '65534'])('accepts %s', (s) => {
    const r = parsePreferredPort(s);
    expect(r.ok && r.value).toBe(Number(s));
  });
  it.each(['1024', '65535', '0', '80', '99999'])('rejects out-of-range %s', (s) => {
    const r = parsePreferredPort(s);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/1025–65534/);
  });
  it.each(['abc', '10.5', '-2000', '1e4', '22 22'])('rejects non-integer %s', (s) => {
    expect(parsePreferredPort(s).ok).toBe(false);
  });
  it('warns outside the recommended range', () => {
    const r = parsePreferredPort('2222');
    expect(r.ok && r.warning).toMatch(/10000–65000 is recommended/);
    const good = parsePreferredPort('10022');
    expect(good.ok && good.warning).toBeUndefined();
  });
});

describe('other validators', () => {
  it('refresh seconds', () => {
    expect(parseRefreshSeconds('0')).toEqual({ ok: true, value: 0 });
    expect(parseRefreshSeconds('30')).toEqual({ ok: true, value: 30 });
    expect(parseRefreshSeconds('2').ok).toBe(false);
    expect(parseRefreshSeconds('x').ok).toBe(false);
  });
  it('account', () => {
    expect(parseAccount(' work ')).toEqual({ ok: true, value: 'work' });
    expect(parseAccount('').ok).toBe(false);
    expect(parseAccount('bad user').ok).toBe(false);
  });
  it('endpoint', () => {
    expect(parseEndpoint('https://api.example.com').ok).toBe(true);
    expect(parseEndpoint('http://127.0.0.1:8090').ok).toBe(true);
    expect(parseEndpoint('example.com').ok).toBe(false);
    expect(parseEndpoint('ftp://example.com').ok).toBe(false);
    expect(parseEndpoint('').ok).toBe(false);
  });
});

describe('formatting', () => {
  it('bytes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
    expect(formatBytes(300 * 1024 ** 3)).toBe('300 GiB');
  });
  it('relative time', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    expect(relativeTime('2026-01-01T11:59:50Z', now)).toBe('just now');
    expect(relativeTime('2026-01-01T11:55:00Z', now)).toBe('5 minutes ago');
    expect(relativeTime('2026-01-01T09:00:00Z', now)).toBe('3 hours ago');
    expect(relativeTime('2025-12-30T12:00:00Z', now)).toBe('2 days ago');
    expect(relativeTime('garbage', now)).toBe('—');
  });
});

describe('errors', () => {
  it('normalises rejections', () => {
    expect(toApiError({ code: 'Tls', message: 'bad cert' })).toEqual(new ApiError('Tls', 'bad cert'));
    expect(toApiError({ code: 'Weird', message: 'x' }).code).toBe('Unknown');
    expect(toApiError('plain string').message).toBe('plain string');
  });
  it('login texts depend on mode and OTP', () => {
    expect(loginErrorText(new ApiError('AuthFailed', ''), 'session', false)).toBe('Wrong email or password.');
    expect(loginErrorText(new ApiError('AuthFailed', ''), 'api', false)).toMatch(/access key or secret key/);
    expect(loginErrorText(new ApiError('TotpRequired', ''), 'session', true)).toMatch(/not accepted/);
  });
});

describe('restoreSummary', () => {
  it('names each reopened tunnel, its port and a taken one, then each dropped one', () => {
    expect(
      restoreSummary({
        reopened: [
          { session: 's1', app: 'sshd', port: 2222, movedFrom: null, note: null },
          { session: 's2', app: 'sshd', port: 40123, movedFrom: 2200, note: 'x' },
          { session: 's1', app: 'jupyter', port: 40200, movedFrom: null, note: null },
        ],
        dropped: [{ session: 's3', app: 'sshd', reason: 'the session ended' }],
      }),
    ).toEqual([
      'Reopened 3 tunnels: s1 on 2222, s2 on 40123 (2200 was taken), s1 (jupyter) on 40200',
      'Dropped s3: the session ended',
    ]);
  });
  it('one tunnel, and nothing to tell', () => {
    expect(restoreSummary({ reopened: [{ session: 'a', app: 'sshd', port: 1, movedFrom: null, note: null }], dropped: [] })).toEqual([
      'Reopened 1 tunnel: a on 1',
    ]);
    expect(restoreSummary({ reopened: [], dropped: [] })).toEqual([]);
  });
});
