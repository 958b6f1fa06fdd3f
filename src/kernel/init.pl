#!/usr/bin/perl
# init.pl: PID 1 for `tscontain run --init`, what tini is for `docker run --init`.
#
#   init.pl [--wd DIR] [--env NAME=VALUE]... -- COMMAND [ARG]...
#
# In a PID namespace the kernel gives PID 1 no default signal actions: a command that sets no
# handler of its own (sleep, most servers) ignores SIGTERM and Ctrl-C there. And orphans are
# re-parented to PID 1, which must reap them or they stay zombies. This program is PID 1 instead:
#  - it forwards HUP INT QUIT USR1 USR2 ALRM TERM WINCH CONT TSTP to the command (not to its group,
#    as tini without -g);
#  - it reaps every child: the command, and whatever orphan the kernel hands it;
#  - when the command ends it ends too, with the command's code, or 128+N if signal N killed it
#    (the kernel then kills what is left of the namespace);
#  - the command runs in a process group of its own, made the terminal's foreground group when
#    there is a terminal (as tini does): Ctrl-C on a `-t` container reaches the command only, once.
#
# Why perl and not sh: a sh init cannot give its child default signal actions (a non-interactive
# sh starts `cmd &` with INT and QUIT ignored, and `wait` only returns for traps when the command
# runs in the background), cannot hand the terminal to the command's group, and `trap` runs only
# between commands. perl-base's builtins do all of it (fork, waitpid, kill, setpgrp, ioctl).
#
# Security: tscontain runs this with the host's perl, from the host's detached root through ld.so,
# after pivot_root: until its first statement runs, its working directory is the host's root,
# which no longer has any name inside the container but is still reachable through a cwd. So:
#  - its first statement changes to the container's root, before it reads anything the container
#    controls; a process whose cwd stays there (or any of its children) could open every host file
#    through relative paths ("./etc/shadow"). Then it closes every fd above 2 (close_range(2)): none
#    of the host's may reach the command.
#  - it loads no module, not even strict.pm: the root is the container's, @INC's absolute paths
#    would load the image's files, and a `use` runs before the first statement, in the host's cwd.
#  - it must be started with an EMPTY environment: ld.so reads LD_PRELOAD and LD_LIBRARY_PATH, glibc
#    LOCPATH and GCONV_PATH, perl PERL5OPT, PERL5LIB and PERLIO (layers load modules), all before the
#    first statement; an image's ENV could name its own code in any of them, which would run with the
#    host's root as its cwd. The command's environment comes as --env arguments, set right before exec.
# The command's signal actions are reset to default; its working directory is DIR (default /), in
# the container's root.
chdir('/') or die "tscontain init: chdir /: $!\n";
close_fds();

my $wd = '/';
my %env;
while (@ARGV) {
  my $a = shift @ARGV;
  last if $a eq '--';
  if ($a eq '--wd' && @ARGV) { $wd = shift @ARGV }
  elsif ($a eq '--env' && @ARGV && $ARGV[0] =~ /\A([^=]+)=(.*)\z/s) { $env{$1} = $2; shift @ARGV }
  else { usage() }
}
usage() unless @ARGV;
chdir($wd) or die "tscontain init: working directory $wd: $!\n";
my @argv = @ARGV;

sub usage { print STDERR "usage: init.pl [--wd DIR] [--env NAME=VALUE]... -- COMMAND [ARG]...\n"; exit 125 }

# close_range(3, ~0U, 0): number 436 on every architecture (Linux 5.9). Older kernels: the fds listed
# in /proc/self/fd, closed through perl handles opened on their numbers.
sub close_fds {
  return if syscall(436, 3, 0xffffffff, 0) == 0;
  opendir(my $d, '/proc/self/fd') or return;
  my @fds = grep { /\A[0-9]+\z/ && $_ > 2 && $_ != fileno($d) } readdir($d);
  closedir($d);
  for my $fd (@fds) {
    open(my $h, '<&=', $fd) or next;
    close($h);
  }
}

# ---- signals ----
my $TIOCSPGRP = 0x5410;
my @forward = qw(HUP INT QUIT USR1 USR2 ALRM TERM WINCH CONT TSTP);
my $init = $$;
my $child = 0;
my (@pending, @mine);   # for the command before it exists; received by the child before its exec
sub forward {
  my ($sig) = @_;
  if ($$ != $init) { push @mine, $sig }
  elsif ($child) { kill $sig, $child }
  else { push @pending, $sig }
}
$SIG{$_} = \&forward for @forward;

$child = fork();
die "tscontain init: fork: $!\n" unless defined $child;
if ($child == 0) {
  for my $sig (keys %SIG) { $SIG{$sig} = 'DEFAULT' unless $sig =~ /\A(?:ZERO|KILL|STOP)\z/ }
  setpgrp(0, 0);
  if (-t STDIN) {
    local $SIG{TTOU} = 'IGNORE';   # a background group asking for the terminal would be stopped
    my $pg = pack('i', $$);
    ioctl(STDIN, $TIOCSPGRP, $pg);
  }
  kill $_, $$ for @mine;
  %ENV = %env;
  { exec { $argv[0] } @argv }
  my $err = $! + 0;
  print STDERR "tscontain init: $argv[0]: $!\n";
  exit($err == 2 ? 127 : 126);   # ENOENT: 127, as a shell says "not found"
}
kill $_, $child for splice(@pending);

for (;;) {
  my $pid = waitpid(-1, 0);   # perl restarts it after running a signal handler
  exit 125 if $pid < 0;       # no child at all: cannot happen while the command lives
  next if $pid != $child;     # an orphan, reaped
  my $st = $?;
  exit($st & 127 ? 128 + ($st & 127) : $st >> 8);
}
