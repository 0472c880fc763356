// causeway-idmap-mount UID SOURCE TARGET [SOURCE TARGET ...]
//
// Mounts each SOURCE directory at TARGET idmapped: UID (the build's uid, and the gid of the same
// number) shown as 0, 0 as no one (the overflow id), every other id as itself. A root container
// that sees its work directory through such a mount sees the files the build's uid wrote on the
// host (a host-run get's) as root's, and what it writes lands on disk as the build's uid's; no id
// it can give a file there is 0 on disk, so it leaves no setuid-root file in reach of the build's
// uid on the host (a chown to UID is refused: EOVERFLOW). Debian's runc 1.1 takes
// no mount idmaps and util-linux 2.38's mount has no X-mount.idmap, hence this: a user namespace
// with that mapping (a child's, held only until its fd is open), then per pair open_tree
// (OPEN_TREE_CLONE: SOURCE alone, not what is mounted below it), mount_setattr
// (MOUNT_ATTR_IDMAP) and move_mount onto TARGET. Started as root by the worker; built by
// scripts/build-helpers.sh (npm run build). Linux 5.12 or later, on a file system that
// allows idmapped mounts (ext4, xfs, btrfs, tmpfs; not overlayfs, whose layers may be idmapped
// instead).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
  fprintf(stderr, "causeway-idmap-mount: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
  exit(1);
}

static void write_file(const char *file, const char *text) {
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open", file);
  ssize_t n = write(fd, text, strlen(text));
  if (n != (ssize_t)strlen(text)) die("write", file);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc < 4 || argc % 2 != 0) {
    fprintf(stderr, "usage: causeway-idmap-mount UID SOURCE TARGET [SOURCE TARGET ...]\n");
    return 2;
  }
  char *end;
  errno = 0;
  unsigned long uid = strtoul(argv[1], &end, 10);
  if (errno || *end || uid == 0 || uid >= 4294967294UL) {
    fprintf(stderr, "causeway-idmap-mount: UID %s: not a uid other than 0\n", argv[1]);
    return 2;
  }

  // The child enters a new user namespace and says so; its namespace outlives it through the fd.
  int ready[2], done[2];
  if (pipe2(ready, O_CLOEXEC) || pipe2(done, O_CLOEXEC)) die("pipe", NULL);
  pid_t child = fork();
  if (child < 0) die("fork", NULL);
  if (child == 0) {
    // Its copy of the parent's end, or the read below would never see the parent close it.
    close(done[1]);
    char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    (void)read(done[0], &c, 1);
    _exit(0);
  }
  close(ready[1]);
  close(done[0]);
  char c = 'n';
  if (read(ready[0], &c, 1) != 1 || c != 'y') {
    errno = EPERM;
    die("unshare", "--user");
  }
  // A file's id on disk is read as an id of the namespace: 1..UID-1 as themselves, UID as 0, the
  // rest as themselves; 0 is in no extent.
  char map[256], file[64];
  snprintf(map, sizeof map, "1 1 %lu\n%lu 0 1\n%lu %lu %lu\n", uid - 1, uid, uid + 1, uid + 1, 4294967295UL - uid - 1);
  snprintf(file, sizeof file, "/proc/%d/uid_map", child);
  write_file(file, map);
  snprintf(file, sizeof file, "/proc/%d/gid_map", child);
  write_file(file, map);
  snprintf(file, sizeof file, "/proc/%d/ns/user", child);
  int userns = open(file, O_RDONLY | O_CLOEXEC);
  if (userns < 0) die("open", file);
  close(done[1]);
  waitpid(child, NULL, 0);

  for (int i = 2; i < argc; i += 2) {
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, argv[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) die("open_tree", argv[i]);
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (__u64)userns};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) die("mount_setattr MOUNT_ATTR_IDMAP", argv[i]);
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, argv[i + 1], MOVE_MOUNT_F_EMPTY_PATH) != 0) die("move_mount to", argv[i + 1]);
    close(tree);
  }
  return 0;
}
