# tscontain: build, test, images and the "containers from scratch" talk as demos.
# Every demo runs alone on a fresh machine (as root): it builds tscontain and the image it needs.
SHELL := /bin/sh
.ONESHELL:
.SILENT:
TSC := bin/tscontain
# the container's cgroup directory for a controller, from the /proc/self/cgroup it printed
CGDIR = cg() { l=$$(grep -E "^[0-9]+:([^:]*[,:])?$$1([,:][^:]*)?:/tscontain/|^0::/tscontain/" "$$2" | head -1); p=$${l\#\#*:}; case $$l in 0::*) echo /sys/fs/cgroup$$p;; *) echo /sys/fs/cgroup/$$1$$p;; esac; }
# poll CONDITION...: run it every 0.1 s until it succeeds; after 60 s say so and fail
POLL = poll() { i=0; until "$$@"; do i=$$((i + 1)); [ $$i -lt 600 ] || { echo "timed out waiting for: $$*" >&2; return 1; }; sleep 0.1; done; }

.PHONY: all build test test-v2 bench trace doctor demo demo-uts demo-pid demo-mount demo-chroot demo-pivot demo-cgroup-pids demo-cgroup-memory demo-cgroup-cpu

all: build

# installed only when missing: a demo must never reinstall the dependencies under a running test
# suite (after editing package.json, run npm ci yourself)
node_modules:
	npm ci --no-audit --no-fund

# rebuilt only when a source changed (the test suite runs the demos while it runs)
build: dist/bin/tscontain.cjs
dist/bin/tscontain.cjs: $(shell find src -name "*.ts" -o -name "*.sh" -o -name "*.pl") build.mjs tsconfig.json | node_modules
	npm run build --silent

test: build
	npm test

# the whole suite on a pure cgroup v2 host (a QEMU guest; see README)
test-v2: build
	npm run test:v2

bench: build
	npm run bench

# one container start, program by program, from the kernel's scheduler events (as root)
trace: build
	sh bench/trace.sh

doctor: build
	$(TSC) doctor

rootfs-%: build
	$(TSC) rootfs build $*

demo: demo-uts demo-pid demo-mount demo-chroot demo-pivot demo-cgroup-pids demo-cgroup-memory demo-cgroup-cpu

demo-uts: build
	echo "== UTS namespace (uts_namespaces(7)): the container has its own hostname; the host's does not change"
	echo "host's hostname before: $$(hostname)"
	$(TSC) run --rm --hostname demo-container busybox sh -c 'echo "hostname inside the container: $$(hostname)"'
	echo "host's hostname after:  $$(hostname)"

demo-pid: build
	echo "== PID namespace (pid_namespaces(7)): the command is PID 1 and sees only its own processes"
	$(TSC) run --rm busybox ps -o pid,args
	echo "processes on the host: $$(ls /proc | grep -c '^[0-9]'); in the container: the lines above"

demo-mount: build
	echo "== mount namespace (mount_namespaces(7)): the container mounts its own /proc; the host never sees it"
	$(TSC) run --rm --cap-add SYS_ADMIN busybox sh -c 'mount -t tmpfs demo-tmpfs /tmp; echo "mounts inside the container:"; cut -d" " -f5,9 /proc/self/mountinfo'
	echo "mounts on the host made for containers: $$(grep -cE 'tscontain|demo-tmpfs' /proc/self/mountinfo) (grep -E 'tscontain|demo-tmpfs' /proc/self/mountinfo)"

demo-chroot: build
	echo "== chroot(2) alone can be escaped: the container's root is only a chroot, the host's root is still mounted"
	$(TSC) rootfs build chroot-escape >/dev/null
	$(TSC) run --rm --no-pivot chroot-escape /bin/escape || true

demo-pivot: build
	echo "== pivot_root(2) + unmounting the old root: the same escape finds nothing (this is why runtimes use pivot_root)"
	$(TSC) rootfs build chroot-escape >/dev/null
	$(TSC) run --rm chroot-escape /bin/escape || true

demo-cgroup-pids: build
	echo "== cgroup pids controller (cgroups(7)): pids.max = 20 contains a fork bomb; the host stays responsive"
	out=$$(mktemp /tmp/tscontain-demo.XXXXXX); go=$$out.go; mkfifo $$go
	# PID 1 shares the 20 pids with the bomb, and busybox sh exits when a fork fails: after the bomb
	# it uses builtins only (read, a glob, echo) and waits for a line from this recipe on stdin
	$(TSC) run --rm -i --cgroupns host --pids-limit 20 busybox sh -c 'cat /proc/self/cgroup; bomb() { bomb | bomb & }; bomb 2>/dev/null; read go; set -- /proc/[0-9]*; echo "processes in the container: $$# (pids.max = 20)"' < $$go > $$out &
	exec 3> $$go
	$(CGDIR)
	$(POLL)
	rc=0
	if poll grep -q tscontain $$out && d=$$(cg pids $$out) && poll grep -q "^max [1-9]" $$d/pids.events; then
	  echo "the host still runs programs: $$(echo yes)"
	  echo "pids.current = $$(cat $$d/pids.current), pids.max = $$(cat $$d/pids.max), refused forks (pids.events): $$(cat $$d/pids.events)"
	else rc=1; fi
	echo go >&3; exec 3>&-
	wait
	grep processes $$out; rm -f $$out $$go
	exit $$rc

demo-cgroup-memory: build
	echo "== cgroup memory controller: a process that needs more than -m 32m is OOM-killed, and tscontain says so (exit 137)"
	$(TSC) run --rm -m 32m busybox sh -c 'echo "allocating 200 MB..."; x=$$(head -c 200000000 /dev/zero | tr "\0" a); echo "not reached"'; echo "exit code: $$?"

demo-cgroup-cpu: build
	echo "== cgroup cpu controller (CFS bandwidth): --cpus 0.2 lets a busy loop use 20 ms of every 100 ms"
	out=$$(mktemp /tmp/tscontain-demo.XXXXXX); go=$$out.go; mkfifo $$go
	# the loop spins until this recipe has watched it be throttled 20 times (2 s of 100 ms periods)
	$(TSC) run --rm -i --cgroupns host --cpus 0.2 busybox sh -c 'cat /proc/self/cgroup; sh -c "while :; do :; done" & read go; kill $$!' < $$go > $$out &
	exec 3> $$go
	$(CGDIR)
	$(POLL)
	throttled() { [ "$$(sed -n 's/^nr_throttled //p' $$1/cpu.stat)" -ge 20 ] 2>/dev/null; }
	rc=0
	if poll grep -q tscontain $$out && d=$$(cg cpu $$out) && poll throttled $$d; then
	  echo "cpu.stat of the container's cgroup ($$d):"
	  sed 's/^/  /' $$d/cpu.stat
	  echo "nr_throttled > 0: the kernel stopped the loop each time it used up its quota"
	else rc=1; fi
	echo go >&3; exec 3>&-
	wait; rm -f $$out $$go
	exit $$rc
