import { describe, expect, it } from 'vitest';
import { pathInMessage, baseName, bytesText, crumbs, formatEta, formatSpeed, joinPath, kindIcon, kindText, nameError, opensAsDir, parentPath, sizeText } from './files';
import { entry, transferView } from '../test/remote';

describe('paths', () => {
  it('joins and goes up', () => {
    expect(joinPath('/home/demo', 'a')).toBe('/home/demo/a');
    expect(joinPath('/', 'a')).toBe('/a');
    expect(parentPath('/home/demo/a')).toBe('/home/demo');
    expect(parentPath('/a')).toBe('/');
    expect(parentPath('/')).toBe('/');
    expect(parentPath('/home/demo/')).toBe('/home');
  });
  it('makes breadcrumbs', () => {
    expect(crumbs('/home/demo')).toEqual([
      { name: '/', path: '/' },
      { name: 'home', path: '/home' },
      { name: 'demo', path: '/home/demo' },
    ]);
    expect(crumbs('/')).toEqual([{ name: '/', path: '/' }]);
  });
  it('base names of local and remote paths', () => {
    expect(baseName('/home/me/a.txt')).toBe('a.txt');
    expect(baseName('C:\\Users\\me\\b.txt')).toBe('b.txt');
    expect(baseName('/home/me/dir/')).toBe('dir');
  });
});

describe('names', () => {
  it.each(['', '  ', 'a/b', '.', '..'])('refuses %j', (n) => expect(nameError(n)).not.toBeNull());
  it.each(['a', '.hidden', 'my folder', '..a', 'ümlaut'])('accepts %j', (n) => expect(nameError(n)).toBeNull());
});

describe('entries', () => {
  it('folders and links to folders open; icons and words per kind', () => {
    const link = entry({ name: 'l', kind: 'symlink', linkTarget: 'd', targetKind: 'dir' });
    const broken = entry({ name: 'b', kind: 'symlink', linkTarget: 'x', targetKind: null });
    expect(opensAsDir(entry({ name: 'd', kind: 'dir' }))).toBe(true);
    expect(opensAsDir(link)).toBe(true);
    expect(opensAsDir(entry({ name: 'f' }))).toBe(false);
    expect(kindIcon(link)).toBe('dir');
    expect(kindIcon(broken)).toBe('broken');
    expect(kindText(broken)).toBe('broken link');
    expect(kindText(entry({ name: 's', kind: 'other' }))).toBe('special file');
    expect(sizeText(entry({ name: 'f', size: 1536 }))).toBe('1.5 KiB');
    expect(sizeText(entry({ name: 'd', kind: 'dir', size: 4096 }))).toBe('—');
  });
});

describe('transfer texts', () => {
  it('speed, ETA and bytes', () => {
    expect(formatSpeed(12 * 1024 * 1024)).toBe('12 MiB/s');
    expect(formatEta(null)).toBe('—');
    expect(formatEta(42)).toBe('42 s');
    expect(formatEta(185)).toBe('3 min 05 s');
    expect(formatEta(3720)).toBe('1 h 02 min');
    expect(bytesText(transferView())).toBe('12 MiB of 48 MiB');
    expect(bytesText(transferView({ total: null, bytes: 2048 }))).toBe('2.0 KiB');
  });
});

describe('pathInMessage', () => {
  it.each([
    ['/home/demo/a.tar.gz already exists in s.', '/home/demo/a.tar.gz'],
    ['the file “/home/demo/my file.txt” already exists', '/home/demo/my file.txt'],
    ["'/tmp/x' exists", '/tmp/x'],
    ['target exists: /home/demo/Downloads/results.csv.', '/home/demo/Downloads/results.csv'],
    ['C:\\Users\\me\\a.txt already exists', 'C:\\Users\\me\\a.txt'],
    ['something exists', null],
  ])('%s', (msg, path) => expect(pathInMessage(msg)).toBe(path));
});
