# become.pl: the container's process makes itself what the container must be, then becomes the command.
#
#   perl become.pl --caps HEX [--uid N] [--gid N] [--groups N,N,...] [--cgroupns] [--chroot DIR] [--detach DIR]
#                  [--tty PATH] [--keep-cwd]
#                  [--nnp] [--seccomp FILE | --seccomp-hex HEX] [--seccomp-flags N] [--wd DIR] [--preserve-fds N]
#                  [--env NAME=VALUE]... -- COMMAND [ARG...]
#
# A constant program: everything it acts on comes in as argv, nothing is ever evaluated. It uses
# perl builtins and syscall() only, and empties @INC first: it runs after pivot_root from the
# host's detached old root (its cwd) through the dynamic loader, where perl's library directories
# would resolve in the container's root, i.e. in files an image controls. For the same reason perl
# must be started with a clean environment (no PERL5OPT, PERL5LIB, PERLIO, LD_PRELOAD, ...): the
# command's environment is given as --env and is exactly that, nothing inherited.
#
# Order (as runc's libcontainer/standard_init_linux.go and finalizeNamespace): every step that
# needs a capability runs before the step that removes it; the seccomp filter is loaded while
# CAP_SYS_ADMIN is held when no_new_privs is off, and as late as possible when it is on.
# Exit status: 125 when the container's process could not be set up, 127 when the command is not
# found, 126 when it cannot be executed (as docker); otherwise the command's own.
BEGIN { @INC = () }

# ---- constants (x86_64 and the generic table of aarch64/riscv64; errno values are the same) ----
my %NR_X86_64 = (getcwd => 79, chroot => 161, umount2 => 166, prctl => 157, seccomp => 317, unshare => 272, setsid => 112, dup3 => 292, fcntl => 72,
  setgroups => 116, setresgid => 119, setresuid => 117, capget => 125, capset => 126, close_range => 436);
my %NR_GENERIC = (getcwd => 17, chroot => 51, umount2 => 39, prctl => 167, seccomp => 277, unshare => 97, setsid => 157, dup3 => 24, fcntl => 25,
  setgroups => 159, setresgid => 149, setresuid => 147, capget => 90, capset => 91, close_range => 436);
my ($EPERM, $ENOENT, $EACCES, $ENOTDIR, $EINVAL, $ENOSYS) = (1, 2, 13, 20, 22, 38);
my ($O_RDWR, $O_NOCTTY, $TIOCSCTTY, $TIOCNOTTY, $F_SETFD, $FD_CLOEXEC) = (2, 0400, 0x540E, 0x5422, 2, 1);
my ($PR_SET_SECCOMP, $PR_CAPBSET_READ, $PR_CAPBSET_DROP, $PR_SET_NO_NEW_PRIVS, $PR_CAP_AMBIENT) = (22, 23, 24, 38, 47);
my $PR_SET_DUMPABLE = 4;
my ($CLONE_NEWCGROUP, $SECCOMP_SET_MODE_FILTER, $SECCOMP_MODE_FILTER, $CLOSE_RANGE_CLOEXEC) = (0x02000000, 1, 2, 4);
my $MNT_DETACH = 2;
# for the old root: mount(2), faccessat(2), mount_setattr(2) (Linux 5.12; one number on both tables)
@NR_X86_64{qw(mount faccessat mount_setattr)} = (165, 269, 442);
@NR_GENERIC{qw(mount faccessat mount_setattr)} = (40, 48, 442);
my $CAP_V3 = 0x20080522;

sub fail { print STDERR "tscontain: $_[0]\n"; exit 125 }

# Printable form of text that came from outside (a command name) for an error line.
sub shown { my $s = shift; $s =~ s/([\x00-\x1f\x7f])/sprintf('\\x%02x', ord $1)/ge; qq{"$s"} }

# The syscall table by the machine of the running program (e_machine of its ELF header).
sub syscall_table {
  open(my $h, '<:raw', '/proc/self/exe') or fail("cannot read /proc/self/exe to find the machine type: $!");
  read($h, my $hdr, 20) == 20 or fail('cannot read the ELF header of /proc/self/exe');
  my ($class, $data, $machine) = unpack('x4 C C x12 S<', $hdr);
  fail('become.pl needs a 64-bit little-endian machine') unless $class == 2 && $data == 1;
  return \%NR_X86_64 if $machine == 62;
  return \%NR_GENERIC if $machine == 183 || $machine == 243;
  fail("become.pl knows no system call numbers for ELF machine $machine");
}

# ---- 0. read and check every argument, and the filter file, before anything changes ----
# A tripwire: started with the container's environment, the loader and perl would already have
# read these from it (LD_PRELOAD runs an image's library as root, with the host's root as cwd).
for (sort keys %ENV) {
  fail('become.pl must be started with a clean environment (' . shown($_) . " is set): the command's goes in --env")
    if /\A(?:LD_|PERL|GCONV_PATH\z|GLIBC_TUNABLES\z|LOCPATH\z|NLSPATH\z|MALLOC_)/;
}
my %VALUE = map { $_ => 1 } qw(--caps --uid --gid --groups --tty --chroot --detach --seccomp --seccomp-hex --seccomp-flags --wd --preserve-fds);
my %FLAG = map { $_ => 1 } qw(--cgroupns --nnp --keep-cwd);
my (%o, @env, $dashdash);
while (@ARGV) {
  my $a = shift @ARGV;
  if ($a eq '--') { $dashdash = 1; last }
  if ($a eq '--env') {
    @ARGV or fail('become: --env needs NAME=VALUE');
    my $e = shift @ARGV;
    $e =~ /\A[^=\0]+=/ or fail('become: --env needs NAME=VALUE');
    push @env, $e;
    next;
  }
  fail('become: unknown option ' . shown($a)) unless $VALUE{$a} || $FLAG{$a};
  fail("become: $a is given twice") if exists $o{$a};
  if ($FLAG{$a}) { $o{$a} = 1; next }
  @ARGV or fail("become: $a needs a value");
  $o{$a} = shift @ARGV;
}
fail('become: no command (it follows --)') unless $dashdash && @ARGV;
my $id = qr/\A(?:[0-9]|[1-9][0-9]{0,9})\z/;
defined $o{'--caps'} && $o{'--caps'} =~ /\A[0-9a-fA-F]{1,16}\z/ or fail('become: --caps needs a hexadecimal mask');
my $mask = hex $o{'--caps'};
my $uid = $o{'--uid'} // 0;
my $gid = $o{'--gid'} // 0;
$uid =~ $id && $uid < 4294967295 or fail('become: --uid needs a number');
$gid =~ $id && $gid < 4294967295 or fail('become: --gid needs a number');
($uid, $gid) = (0 + $uid, 0 + $gid);   # syscall() passes numbers as numbers, strings as pointers
my @groups = split /,/, $o{'--groups'} // '', -1;
for (@groups) { /$id/ && $_ < 4294967295 or fail('become: --groups needs numbers separated by commas'); $_ += 0 }
my $wd = $o{'--wd'} // '/';
# Absolute only: a relative path would resolve against the caller's cwd, the host's old root.
$wd =~ m{\A/} or fail('become: --wd needs an absolute path');
my $tty = $o{'--tty'};
!defined $tty || $tty =~ m{\A/} or fail('become: --tty needs an absolute path');
my $preserve = $o{'--preserve-fds'} // 0;
$preserve =~ /\A[0-9]{1,4}\z/ or fail('become: --preserve-fds needs a number');
my $sflags = $o{'--seccomp-flags'} // 0;
$sflags =~ /\A[0-9]{1,10}\z/ or fail('become: --seccomp-flags needs a number');
($preserve, $sflags) = (0 + $preserve, 0 + $sflags);
my $NR = syscall_table();

# Not dumpable until the exec (runc: CVE-2016-9962): once the capabilities drop to the container's,
# a process of the container (same uid, the same capabilities) may open this one's /proc entries,
# and `tscontain exec` holds the host's loader, perl and library directories as fds until the exec.
# The exec of the command makes it dumpable again.
syscall($NR->{prctl}, $PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 or fail("prctl(PR_SET_DUMPABLE) failed: $!");

# The filter is read now: its path is relative to the caller's cwd (the old root) and only root
# may read it. struct sock_fprog { unsigned short len; struct sock_filter *filter; } on LP64.
my ($filter, $fprog);
if (defined $o{'--seccomp-hex'}) {
  # the plan's way: the filter as argv data, so no file needs to be reachable after pivot_root
  $o{'--seccomp-hex'} =~ /\A(?:[0-9a-f]{16})+\z/ or fail('become: --seccomp-hex needs whole 8-byte instructions in hex');
  $filter = pack('H*', $o{'--seccomp-hex'});
}
if (defined $o{'--seccomp'}) {
  open(my $h, '<:raw', $o{'--seccomp'}) or fail("cannot open the seccomp filter $o{'--seccomp'}: $!");
  local $/;
  $filter = <$h> // '';
  close $h;
}
if (defined $filter) {
  my $n = length($filter) / 8;
  fail('the seccomp filter is not a whole number of 8-byte instructions (1 to 4096)')
    unless length($filter) % 8 == 0 && $n >= 1 && $n <= 4096;
  $fprog = pack('S x![p] p', $n, $filter);   # $filter stays alive (file scope) while the kernel reads it
}

# ---- 0. the host's root, which pivot_root put at DIR: made read-only (below), then detached lazily
# (umount -l), in this program rather than by umount, one program start less. perl is loaded by now,
# and the cwd keeps the detached tree reachable for what is started from it (init.pl with --init) ----
if (defined $o{'--detach'}) {
  $o{'--detach'} =~ m{\A/} or fail('become: --detach needs an absolute path');
  readonly_old_root($o{'--detach'});
  syscall($NR->{umount2}, $o{'--detach'}, $MNT_DETACH) == 0
    or fail("cannot detach the host's root at $o{'--detach'}: $!");
}

# The exe of this program (and of init.pl) is the host's loader on the old root. A command that is a
# script `#!/proc/self/exe` gets it as its interpreter: the container then has a process that is the
# host's loader, and once no process runs it (no ETXTBSY) /proc/PID/exe opens the host's file for
# writing (runc: CVE-2019-5736). The old root is this mount namespace's own copy of the host's mounts,
# so read-only flags on it change nothing on the host. Here rather than by a `mount -o remount,bind,ro`
# before pivot_root: no program start more, and the window is empty: until the command is exec'd no
# program of the container has run in this namespace, and this process is not dumpable (its /proc
# entries closed to the container). A reference taken earlier would not help: the mount is checked
# when a file is opened for writing, and mount_setattr fails (EBUSY) while one is open for writing.
sub readonly_old_root {
  # syscall() needs strings it could write to: variables, not constants
  my ($dir, $exe, $EROFS) = (shift, '/proc/self/exe', 30);
  # AT_FDCWD, AT_RECURSIVE; struct mount_attr { attr_set = MOUNT_ATTR_RDONLY, attr_clr, propagation, userns_fd }
  my $attr = pack('Q4', 1, 0, 0, 0);
  if (syscall($NR->{mount_setattr}, -100, $dir, 0x8000, $attr, 32) < 0) {
    $! == $ENOSYS or fail("cannot make the host's root at $dir read-only: $!");
    # before Linux 5.12: its top mount only (MS_REMOUNT | MS_BIND | MS_RDONLY), the loader's on most
    # hosts; the flags it clears (nosuid, ...) do not matter on a tree detached next
    syscall($NR->{mount}, 0, $dir, 0, 4096 | 32 | 1, 0) == 0 or fail("cannot remount $dir read-only: $!");
  }
  syscall($NR->{faccessat}, -100, $exe, 2) < 0 && $! == $EROFS
    or fail("the host's loader is still writable through the old root (a mount of its own; Linux 5.12 needed)");
}

sub load_seccomp {
  return unless defined $fprog;
  my $r = syscall($NR->{seccomp}, $SECCOMP_SET_MODE_FILTER, $sflags, $fprog);
  # seccomp(2) came in Linux 3.17; prctl(PR_SET_SECCOMP) is the older door to the same filter
  $r = syscall($NR->{prctl}, $PR_SET_SECCOMP, $SECCOMP_MODE_FILTER, $fprog, 0, 0)
    if $r < 0 && $! == $ENOSYS && !$sflags;
  $r >= 0 or fail("loading the seccomp filter failed: $!");
}

# ---- 1. cgroup namespace: needs CAP_SYS_ADMIN (about to go, and docker's seccomp profile denies
# unshare without it), and the process has joined the container's cgroup, which becomes its root ----
if ($o{'--cgroupns'}) {
  syscall($NR->{unshare}, $CLONE_NEWCGROUP) == 0 or fail("unshare(CLONE_NEWCGROUP) failed: $!");
}

# ---- 1b. --chroot (tscontain run --no-pivot, for teaching: chroot(2) alone can be escaped): needs
# CAP_SYS_CHROOT, so before the bounding set; the working directory is then found in it ----
if (defined $o{'--chroot'}) {
  syscall($NR->{chroot}, $o{'--chroot'}) == 0 or fail("cannot chroot to $o{'--chroot'}: $!");
}

# ---- 2. terminal: a new session whose controlling terminal is the pty slave, as fds 0, 1 and 2.
# Still root, so the slave opens whatever its mode; it is given to the user the command runs as
# (runc: setupConsole before finalizeNamespace, fixStdioPermissions) ----
if (defined $tty) {
  # EPERM: already a process group leader (then TIOCSCTTY tells whether it leads a session)
  syscall($NR->{setsid}) >= 0 or $! == $EPERM or fail("setsid failed: $!");
  sysopen(my $t, $tty, $O_RDWR | $O_NOCTTY) or fail("cannot open the terminal $tty: $!");
  ioctl($t, $TIOCSCTTY, 0) or fail("cannot make $tty the controlling terminal: $!");
  chown($uid, $gid, $t) or fail("cannot give $tty to $uid:$gid: $!");
  my $fd = fileno $t;
  for my $to (0, 1, 2) {
    next if $to == $fd;
    syscall($NR->{dup3}, $fd, $to, 0) == $to or fail("dup3 of the terminal to fd $to failed: $!");
  }
  close $t if $fd > 2;
} else {
  # Without -t: a session of its own, so the caller's terminal (if the supervisor passed it on) is
  # not the container's controlling terminal: TIOCSTI would push keystrokes into the caller's shell.
  # EPERM: a process group leader stays in its session, so it gives the terminal up (TIOCNOTTY).
  if (syscall($NR->{setsid}) < 0) {
    $! == $EPERM or fail("setsid failed: $!");
    if (sysopen(my $t, '/dev/tty', $O_RDWR | $O_NOCTTY)) {
      ioctl($t, $TIOCNOTTY, 0) or fail("cannot give up the controlling terminal: $!");
      close $t;
    }
  }
}

# ---- 3. file descriptors: nothing but 0, 1, 2 and the first --preserve-fds after them reaches the
# command. Before the filter, so a profile need not allow close_range or fcntl ----
for my $fd (3 .. 2 + $preserve) {
  syscall($NR->{fcntl}, $fd, $F_SETFD, 0) == 0 or fail("fd $fd (--preserve-fds) is not open: $!");
}
if (syscall($NR->{close_range}, 3 + $preserve, 0xffffffff, $CLOSE_RANGE_CLOEXEC) < 0) {
  # close_range(CLOSE_RANGE_CLOEXEC) came in Linux 5.11: mark each open fd instead
  opendir(my $d, '/proc/self/fd') or fail("cannot list /proc/self/fd: $!");
  for (readdir $d) {
    next unless /\A[0-9]+\z/ && $_ >= 3 + $preserve;
    syscall($NR->{fcntl}, 0 + $_, $F_SETFD, $FD_CLOEXEC);   # EBADF for the directory's own fd: fine
  }
  closedir $d;
}

# ---- 4. no_new_privs: before the filter (without CAP_SYS_ADMIN the kernel only takes a filter
# from a process that has it; runc sets it at the same point) ----
if ($o{'--nnp'}) {
  syscall($NR->{prctl}, $PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 or fail("prctl(PR_SET_NO_NEW_PRIVS) failed: $!");
}

# ---- 5. seccomp without no_new_privs: loading a filter then needs CAP_SYS_ADMIN, so now. The
# rest of this program (prctl, capset, setgroups, setresuid, chdir, execve) runs under it ----
load_seccomp() unless $o{'--nnp'};

# ---- 6. bounding set: needs CAP_SETPCAP, which the mask may drop. Every capability the kernel
# knows (PR_CAPBSET_READ fails past the last one, whatever /proc/sys/kernel/cap_last_cap says) ----
my $bounding = 0;
for (my $c = 0; $c < 64; $c++) {
  my $r = syscall($NR->{prctl}, $PR_CAPBSET_READ, $c, 0, 0, 0);
  last if $r < 0;
  if (($mask >> $c) & 1) { $bounding |= 1 << $c if $r == 1; next }
  next if $r == 0;
  syscall($NR->{prctl}, $PR_CAPBSET_DROP, $c, 0, 0, 0) == 0
    or fail("dropping capability $c from the bounding set failed: $!");
}
# nothing ambient (Linux 4.3+; EINVAL before, when there is none). The capset below clears it too (the
# kernel keeps ambient within permitted & inheritable); this says so on its own
syscall($NR->{prctl}, $PR_CAP_AMBIENT, 4, 0, 0, 0) == 0 or $! == $EINVAL
  or fail("clearing the ambient capabilities failed: $!");

# ---- 7. user and groups: setgroups/setresgid need CAP_SETGID and setresuid CAP_SETUID, so before
# capset; groups and gid before uid. A first chdir as root (runc: a directory only root may enter);
# if that is refused, again as the user (a directory only the user may enter) ----
# --keep-cwd: the command is the host's init.pl, started from the old root (the cwd) through the
# loader; it changes into the container itself before anything else
my $cd = $o{'--keep-cwd'} ? 1 : chdir($wd);
my $cderr = $! + 0;
$cd or $cderr == $EACCES or $cderr == $EPERM or fail("cannot change to the working directory $wd: $!");
syscall($NR->{setgroups}, scalar(@groups), pack('L*', @groups)) == 0 or fail("setgroups failed: $!");
syscall($NR->{setresgid}, $gid, $gid, $gid) == 0 or fail("setresgid($gid) failed: $!");
syscall($NR->{setresuid}, $uid, $uid, $uid) == 0 or fail("setresuid($uid) failed: $!");

# ---- 8. capabilities: root keeps the mask as effective and permitted (what it has of it); any
# other user has none, as with docker (setresuid away from 0 has cleared them already); inheritable
# stays empty (CVE-2022-24769) ----
my $hdr = pack('L L', $CAP_V3, 0);
my $have = "\0" x 24;
syscall($NR->{capget}, $hdr, $have) == 0 or fail("capget failed: $!");
my @d = unpack('L6', $have);   # {effective, permitted, inheritable} for caps 0-31, then 32-63
my $permitted = $d[1] | ($d[4] << 32);
my $keep = $uid == 0 ? $mask & $bounding & $permitted : 0;
my ($lo, $hi) = ($keep & 0xffffffff, ($keep >> 32) & 0xffffffff);
syscall($NR->{capset}, $hdr, pack('L6', $lo, $lo, 0, $hi, $hi, 0)) == 0 or fail("capset failed: $!");

if (!$cd) { chdir($wd) or fail("cannot change to the working directory $wd: $!") }
# The directory must be inside the container's root (runc: CVE-2024-21626): a --wd through /proc
# (/proc/self/cwd, /proc/self/fd/N) leads to a host directory, which getcwd(2) names "(unreachable)/..."
unless ($o{'--keep-cwd'}) {
  my $cwd = "\0" x 4096;
  syscall($NR->{getcwd}, $cwd, 4096) > 0 && substr($cwd, 0, 1) eq '/'
    or fail("the working directory $wd is outside the container");
}

# ---- 9. the command's environment: exactly --env (the last of a name wins) ----
%ENV = ();
for (@env) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v }
# and default actions for INT and QUIT, which a non-interactive sh ignores in a background job (the
# supervisor starts the container as one): the command starts as docker's does
$SIG{INT} = $SIG{QUIT} = 'DEFAULT';

# ---- 10. seccomp with no_new_privs: as late as possible, so a profile need allow only execve ----
load_seccomp() if $o{'--nnp'};

# ---- 11. become the command: execvp(3) searches the container's PATH (--env PATH=...) ----
exec { $ARGV[0] } @ARGV;
my $err = $! + 0;
my $why = $err == $ENOENT && $ARGV[0] !~ m{/} ? 'executable file not found in $PATH' : lc "$!";
print STDERR 'tscontain: exec ', shown($ARGV[0]), ": $why\n";
exit($err == $ENOENT || $err == $ENOTDIR ? 127 : 126);
