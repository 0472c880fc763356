// causeway-as-user UID GID GROUPS [NAME=VALUE ...] -- COMMAND [ARG ...]
//
// What users.ts's asUser otherwise does with four programs (unshare, sh, mount, setpriv), in one
// exec: a mount namespace of its own with slave propagation and /proc mounted hidepid=invisible,
// then the user UID:GID with GROUPS (comma-separated gids, or - for none) as its only
// supplementary groups, no capabilities (bounding, inheritable and ambient sets cleared) and
// no_new_privs; then NAME=VALUE set in the environment (the loader's variables, only now, as the
// user) and COMMAND executed, found on PATH as setpriv finds it. Started as root by the worker.
// Built by scripts/build-helpers.sh (npm run build); without it asUser runs the four programs.
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_GROUPS 64

static void die(const char *what, const char *arg) {
  fprintf(stderr, "causeway-as-user: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
  exit(126);
}

static void usage(void) {
  fprintf(stderr, "usage: causeway-as-user UID GID GROUPS [NAME=VALUE ...] -- COMMAND [ARG ...]\n");
  exit(126);
}

static unsigned long number(const char *s) {
  char *end;
  errno = 0;
  unsigned long n = strtoul(s, &end, 10);
  if (errno || end == s || *end) usage();
  return n;
}

int main(int argc, char **argv) {
  if (argc < 6) usage();
  uid_t uid = (uid_t)number(argv[1]);
  gid_t gid = (gid_t)number(argv[2]);
  gid_t groups[MAX_GROUPS];
  size_t ngroups = 0;
  if (strcmp(argv[3], "-") != 0) {
    char *list = argv[3];
    for (char *g = strtok(list, ","); g; g = strtok(NULL, ",")) {
      if (ngroups == MAX_GROUPS) usage();
      groups[ngroups++] = (gid_t)number(g);
    }
  }
  int cmd = 4;
  while (cmd < argc && strcmp(argv[cmd], "--") != 0) cmd++;
  if (cmd + 1 >= argc) usage();

  if (unshare(CLONE_NEWNS) != 0) die("unshare", "--mount");
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) die("mount --make-rslave", "/");
  if (mount("proc", "/proc", "proc", 0, "hidepid=invisible") != 0) die("mount -t proc -o hidepid=invisible proc", "/proc");

  // Every capability out of the bounding set while still root (dropping one needs CAP_SETPCAP).
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) die("dropping a capability from the bounding set", NULL);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) die("clearing ambient capabilities", NULL);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  if (syscall(SYS_capget, &header, data) != 0) die("capget", NULL);
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) data[i].inheritable = 0;
  if (syscall(SYS_capset, &header, data) != 0) die("clearing inheritable capabilities", NULL);

  if (setgroups(ngroups, groups) != 0) die("setgroups", argv[3]);
  if (setresgid(gid, gid, gid) != 0) die("setresgid", argv[2]);
  // From root to another uid the kernel clears the permitted and effective sets (no SECBIT_KEEP_CAPS).
  if (setresuid(uid, uid, uid) != 0) die("setresuid", argv[1]);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs", NULL);

  for (int i = 4; i < cmd; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq || eq == argv[i]) usage();
    *eq = '\0';
    if (setenv(argv[i], eq + 1, 1) != 0) die("setenv", argv[i]);
  }
  execvp(argv[cmd + 1], argv + cmd + 1);
  int err = errno;
  fprintf(stderr, "causeway-as-user: failed to execute %s: %s\n", argv[cmd + 1], strerror(err));
  return err == ENOENT ? 127 : 126;
}
