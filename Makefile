# tscontain: build, test, images and the "containers from scratch" talk as demos.
# Every demo runs alone on a fresh machine (as root): it builds tscontain and the image it needs.
SHELL := /bin/sh
.ONESHELL:
.SILENT:
TSC := bin/tscontain
# the container's cgroup directory for a controller, from the /proc/self/cgroup it printed
CGDIR = cg() { l=$$(grep -E "^[0-9]+:([^:]*[,:])?$$1([,:][^:]*)?:/tscontain/|^0::/tscontain/" "$$2" | head -1); p=$${l\#\#*:}; case $$l in 0::*) echo /sys/fs/cgroup$$p;; *) echo /sys/fs/cgroup/$$1$$p;; esac; }

.PHONY: all build test bench trace doctor demo demo-uts demo-pid demo-mount demo-chroot demo-pivot demo-cgroup-pids demo-cgroup-memory demo-cgroup-cpu

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
	out=$$(mktemp /tmp/tscontain-demo.XXXXXX)
	$(TSC) run --rm --cgroupns host --pids-limit 20 busybox sh -c 'cat /proc/self/cgroup; bomb() { bomb | bomb & }; bomb 2>/dev/null; sleep 3; echo "processes in the container: $$(ls /proc | grep -c "^[0-9]") (pids.max = 20)"' > $$out &
	sleep 2
	$(CGDIR)
	d=$$(cg pids $$out)
	echo "the host still runs programs: $$(echo yes)"
	echo "pids.current = $$(cat $$d/pids.current), pids.max = $$(cat $$d/pids.max), refused forks (pids.events): $$(cat $$d/pids.events)"
	wait
	grep processes $$out; rm -f $$out

demo-cgroup-memory: build
	echo "== cgroup memory controller: a process that needs more than -m 32m is OOM-killed, and tscontain says so (exit 137)"
	$(TSC) run --rm -m 32m busybox sh -c 'echo "allocating 200 MB..."; x=$$(head -c 200000000 /dev/zero | tr "\0" a); echo "not reached"'; echo "exit code: $$?"

demo-cgroup-cpu: build
	echo "== cgroup cpu controller (CFS bandwidth): --cpus 0.2 lets a busy loop use 20 ms of every 100 ms"
	out=$$(mktemp /tmp/tscontain-demo.XXXXXX)
	$(TSC) run --rm --cgroupns host --cpus 0.2 busybox sh -c 'cat /proc/self/cgroup; timeout 4 sh -c "while :; do :; done"; echo done' > $$out &
	sleep 3
	$(CGDIR)
	d=$$(cg cpu $$out)
	echo "cpu.stat of the container's cgroup ($$d):"
	sed 's/^/  /' $$d/cpu.stat
	echo "nr_throttled > 0: the kernel stopped the loop each time it used up its quota"
	wait; rm -f $$out
