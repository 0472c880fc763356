// The owners' restore of a rootless unpack (activities/runtime/containerd/owners.ts) against a
// hostile tree, made as root here as a build's uid or its image could: a hard link to a file
// that is not the unpacker's, a symlink to a file outside, a fifo and a device node. Only the
// unpacker's own files change, each to the owner its xattr names; nothing outside changes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { restoreOwners } from '../../activities/runtime/containerd/owners';

const UNPACKER = 4242;
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'owners-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** user.rootlesscontainers = {uid, gid} as umoci writes it (protobuf varints, fields 1 and 2). */
function setOwnerXattr(file: string, uid: number, gid: number): void {
  const varint = (n: number) => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  const hex = Buffer.from([0x08, ...varint(uid), 0x10, ...varint(gid)]).toString('hex');
  execFileSync('python3', [
    '-c',
    'import os,sys; os.setxattr(sys.argv[1], "user.rootlesscontainers", bytes.fromhex(sys.argv[2]))',
    file,
    hex,
  ]);
}

function owner(file: string): string {
  const st = fs.lstatSync(file);
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
}

test("each of the unpacker's files gets its xattr's owner (root's without one); links, symlinks, devices lead nowhere", async () => {
  const rootfs = path.join(dir, 'rootfs');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(path.join(rootfs, 'data'), { recursive: true });
  fs.mkdirSync(path.join(rootfs, 'bin'));
  fs.writeFileSync(path.join(rootfs, 'data', 'file'), 'x');
  fs.writeFileSync(path.join(rootfs, 'bin', 'su'), '#!/bin/sh\n');
  fs.chmodSync(path.join(rootfs, 'bin', 'su'), 0o4755);
  // Outside the rootfs: one of root's (hard-linked in), one of the unpacker's (a symlink's target).
  fs.writeFileSync(outside, 'host');
  fs.linkSync(outside, path.join(rootfs, 'data', 'hardlink'));
  const target = path.join(dir, 'target');
  fs.writeFileSync(target, 'mine');
  fs.chownSync(target, UNPACKER, UNPACKER);
  fs.symlinkSync(target, path.join(rootfs, 'data', 'symlink'));
  fs.symlinkSync(dir, path.join(rootfs, 'escape'));
  execFileSync('mkfifo', [path.join(rootfs, 'data', 'fifo')]);
  execFileSync('mknod', [path.join(rootfs, 'data', 'null'), 'c', '1', '3']);
  for (const f of ['', 'data', 'data/file', 'bin', 'bin/su', 'data/symlink', 'escape', 'data/fifo', 'data/null'])
    fs.lchownSync(path.join(rootfs, f), UNPACKER, UNPACKER);
  fs.chmodSync(path.join(rootfs, 'bin', 'su'), 0o4755);
  for (const f of ['data', 'data/file']) setOwnerXattr(path.join(rootfs, f), 999, 998);

  await restoreOwners(rootfs, UNPACKER, 'test');

  expect(owner(rootfs)).toBe('0:0 755');
  expect(owner(path.join(rootfs, 'data'))).toBe('999:998 755');
  expect(owner(path.join(rootfs, 'data', 'file'))).toBe('999:998 644');
  // Linux keeps user xattrs off fifos: one is root's, changed without being opened.
  expect(owner(path.join(rootfs, 'data', 'fifo'))).toBe('0:0 644');
  // Root's again, and still setuid (a chown clears it).
  expect(owner(path.join(rootfs, 'bin', 'su'))).toBe('0:0 4755');
  // Not the unpacker's: a link to root's file keeps root's owner; a device node is left alone (never opened).
  expect(owner(outside)).toBe('0:0 644');
  expect(owner(path.join(rootfs, 'data', 'null'))).toBe(`${UNPACKER}:${UNPACKER} 644`);
  // Symlinks are neither followed nor changed.
  expect(owner(target)).toBe(`${UNPACKER}:${UNPACKER} 644`);
  expect(owner(path.join(rootfs, 'data', 'symlink'))).toBe(`${UNPACKER}:${UNPACKER} 777`);
  expect(owner(dir)).toBe('0:0 700');
});

test('an xattr that is not a rootlesscontainers protobuf errors with the file', async () => {
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfs);
  fs.writeFileSync(path.join(rootfs, 'bad'), '');
  fs.chownSync(path.join(rootfs, 'bad'), UNPACKER, UNPACKER);
  execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "user.rootlesscontainers", b"\\x0f")', path.join(rootfs, 'bad')]);
  await expect(restoreOwners(rootfs, UNPACKER, 'image x')).rejects.toThrow(
    /image x: restoring the owners of the rootfs's files failed .*\/bad: user.rootlesscontainers is not a rootlesscontainers protobuf/,
  );
});
