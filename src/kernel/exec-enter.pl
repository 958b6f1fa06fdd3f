# exec-enter.pl: what `tscontain exec` runs on the host before it enters the container: joins the
# container's cgroups, opens host files (the loader, perl, its library directories) read-only as fds
# 3, 4, 5, ... in the order given, then execs the command (nsenter), which runs them as /proc/self/fd/N.
#
#   perl exec-enter.pl [--join CGROUP_PROCS]... [--ro PATH]... -- COMMAND [ARG...]
#
# Why read-only: a process of the container whose exe is one of these files (the loader, as the
# interpreter of a script `#!/proc/self/exe` that exec runs) would otherwise let the container open the
# host's file for writing through /proc/PID/exe once that process ends (runc: CVE-2019-5736). So this
# program makes a mount namespace of its own (private: nothing propagates to the host's), binds each
# path over itself, remounts that bind read-only and opens it there. The fds keep their read-only mount
# after the namespace is gone (nsenter leaves it for the container's), so a write open answers EROFS;
# the host's own mounts are not touched.
#
# A constant program: everything comes in as argv; no module is loaded. Exit status 125 when it cannot
# get as far as the command, 126 or 127 when the command cannot be executed.
BEGIN { @INC = () }

sub fail { print STDERR "tscontain: exec: $_[0]\n"; exit 125 }

my (@join, @ro, $dashdash);
while (@ARGV) {
  my $a = shift @ARGV;
  if ($a eq '--') { $dashdash = 1; last }
  fail("unknown option $a") unless ($a eq '--join' || $a eq '--ro') && @ARGV;
  my $v = shift @ARGV;
  $v =~ m{\A/} or fail("$a needs an absolute path");
  push @{ $a eq '--join' ? \@join : \@ro }, $v;
}
fail('no command (it follows --)') unless $dashdash && @ARGV;

# unshare, mount, dup3, fcntl by the machine of this perl (e_machine of its ELF header)
open(my $elf, '<:raw', '/proc/self/exe') or fail("cannot read /proc/self/exe: $!");
read($elf, my $hdr, 20) == 20 or fail('cannot read the ELF header of /proc/self/exe');
close $elf;
my $machine = unpack('x18 S<', $hdr);
my %NR = (62 => [272, 165, 292, 72], 183 => [97, 40, 24, 25], 243 => [97, 40, 24, 25]);
my ($unshare, $mount, $dup3, $fcntl) = @{ $NR{$machine} // fail("no system call numbers for ELF machine $machine") };
my ($CLONE_NEWNS, $MS_RDONLY, $MS_REMOUNT, $MS_BIND, $MS_REC, $MS_PRIVATE) = (0x20000, 1, 32, 4096, 0x4000, 0x40000);
my $F_DUPFD_CLOEXEC = 1030;

if (@ro) {
  syscall($unshare, $CLONE_NEWNS) == 0 or fail("unshare(CLONE_NEWNS) failed: $!");
  my $root = '/';   # syscall() needs strings it could write to
  syscall($mount, 0, $root, 0, $MS_REC | $MS_PRIVATE, 0) == 0 or fail("cannot make / private: $!");
}
# each opened, then moved to a high fd (close-on-exec), so that placing them at 3, 4, ... below never
# closes one not yet placed
my @high;
for my $p (@ro) {
  my $path = $p;
  syscall($mount, $path, $path, 0, $MS_BIND, 0) == 0 or fail("cannot bind $path over itself: $!");
  # the remount sets the bind's flags to exactly these (nosuid and the like do not matter for an fd)
  syscall($mount, 0, $path, 0, $MS_REMOUNT | $MS_BIND | $MS_RDONLY, 0) == 0
    or fail("cannot remount $path read-only: $!");
  open(my $h, '<', $path) or fail("cannot open $path: $!");
  my $fd = syscall($fcntl, fileno($h), $F_DUPFD_CLOEXEC, 100);
  $fd >= 0 or fail("fcntl(F_DUPFD_CLOEXEC) failed: $!");
  push @high, $fd;
  close $h;
}
for my $i (0 .. $#high) {
  syscall($dup3, $high[$i], 3 + $i, 0) == 3 + $i or fail("dup3 to fd " . (3 + $i) . " failed: $!");
}

# the container's cgroups, before the command starts
for my $procs (@join) {
  open(my $h, '>', $procs) or fail("cannot join the cgroup $procs: $!");
  print {$h} "0\n";
  close $h or fail("cannot join the cgroup $procs: $!");
}

exec { $ARGV[0] } @ARGV;
print STDERR "tscontain: exec: $ARGV[0]: $!\n";
exit($! == 2 ? 127 : 126);
