// The owners of a rootfs that an unprivileged process unpacked (registry-image's `in` under the
// build's uid, `umoci --rootless`): every file is that uid's, and umoci keeps the owner the
// layer named in the file's `user.rootlesscontainers` xattr (a protobuf {uid = 1, gid = 2};
// none means root's). The worker, root, gives each file that owner in an overlay over the
// artifact (rootfs.ts's owned layer), never in the artifact: the artifact stays the build's, and
// a setuid file made root's exists only in the worker's own directory and the steps' mounts.
//
// The image chose the tree (symlinks at /etc/shadow, hard links) and the build's uid may change
// the artifact under the walk, so the walk is anchored on file descriptors: each directory is
// opened relative to its parent's descriptor with O_NOFOLLOW, each entry with O_PATH|O_NOFOLLOW
// (which opens no device and no fifo), and the checks, the xattr, the chown and the chmod all go
// to that one inode (/proc/self/fd/N), so a name swapped for a symlink or a link between the
// check and the change is never followed. Only files the unpacker's uid owns change (a hard link
// to another's file keeps its owner); symlinks carry no xattr (Linux refuses user xattrs on
// them) and keep theirs. Node has no openat, fchownat or xattr calls: Debian's python3 has all.
import { StepErrored } from '../../errors';
import { runCommand } from '../local/spawner';

const RESTORE = String.raw`
import os, stat, sys
root, unpacker = sys.argv[1], int(sys.argv[2])
NOOP = 0xFFFFFFFF

def owner(raw):
    ids, i = {1: 0, 2: 0}, 0
    while i < len(raw):
        key, i = varint(raw, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(raw, i)
            if field in ids: ids[field] = 0 if value == NOOP else value
        elif wire == 2:
            size, i = varint(raw, i)
            i += size
        else:
            raise ValueError('wire type %d' % wire)
    return ids[1], ids[2]

def varint(raw, i):
    value, shift = 0, 0
    while True:
        b = raw[i]; i += 1
        value |= (b & 0x7F) << shift; shift += 7
        if not b & 0x80: return value, i

def restore(fd, st, where):
    node = '/proc/self/fd/%d' % fd
    try:
        raw = os.getxattr(node, 'user.rootlesscontainers')
    except OSError as e:
        if e.errno not in (61, 95): raise  # ENODATA, EOPNOTSUPP: root's
        raw = b''
    try:
        uid, gid = owner(raw)
    except (ValueError, IndexError) as e:
        raise SystemExit('%s: user.rootlesscontainers is not a rootlesscontainers protobuf (%s)' % (where, e))
    if (st.st_uid, st.st_gid) == (uid, gid): return
    os.chown(node, uid, gid)
    if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(node, stat.S_IMODE(st.st_mode))  # chown cleared them

def walk(dfd, dev, where):
    for entry in os.scandir(dfd):
        name = entry.name
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            st = os.fstat(fd)
            if st.st_uid != unpacker or st.st_dev != dev: continue
            if stat.S_ISDIR(st.st_mode):
                sub = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    walk(sub, dev, where + '/' + name)
                finally:
                    os.close(sub)
                restore(fd, st, where + '/' + name)
            elif stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                restore(fd, st, where + '/' + name)
        finally:
            os.close(fd)

top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
st = os.fstat(top)
walk(top, st.st_dev, '')
if st.st_uid == unpacker: restore(top, st, '/')
`;

/** Gives each file of the rootfs mounted at `target` the owner its `user.rootlesscontainers` xattr names (root's without one). */
export async function restoreOwners(target: string, unpackerUid: number, where: string): Promise<void> {
  const r = await runCommand('python3', ['-c', RESTORE, target, String(unpackerUid)], { env: { PATH: process.env.PATH ?? '' } }).catch(
    (err: unknown) => {
      throw new StepErrored(
        `${where}: python3 could not run to restore the image's file owners (${(err as Error).message}): install Debian's python3 on the worker (activities/runtime/containerd/owners.ts)`,
      );
    },
  );
  if (r.code !== 0)
    throw new StepErrored(
      `${where}: restoring the owners of the rootfs's files failed (activities/runtime/containerd/owners.ts): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`,
    );
}
