#!/usr/bin/perl
# pty-relay.pl: the host side of `tscontain run -t`, pty(7). The container gets a terminal of its
# own: a new pseudo-terminal from its own devpts instance, never the caller's (a process holding the
# caller's terminal could push keystrokes into the caller's shell with TIOCSTI).
#
#   pty-relay.pl [--stdin | --detach] --report-fd FD PID1
#
# PID1 is the host pid of the container's PID 1, waiting at the start gate after pivot_root, so
# /proc/PID1/root is the container's root and its /dev/pts the container's devpts. This program
#  1. opens that ptmx (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS below /proc/PID1/root: a symlink in
#     the container's tree cannot send it to a host file), checks that it is a ptmx of another devpts
#     than the host's, unlocks it (TIOCSPTLCK) and reads its number N (TIOCGPTN);
#  2. copies the caller's window size to it (TIOCGWINSZ, TIOCSWINSZ) and follows SIGWINCH;
#  3. with --stdin and a terminal on stdin, puts that terminal in raw mode (as cfmakeraw(3), docker
#     does the same) and restores it on every way out: the end, an error, SIGTERM, SIGHUP;
#  4. writes "/dev/pts/N\n" to fd FD and closes it: the supervisor reads it and passes it through
#     the start gate, where the container opens it as its controlling terminal (become.pl --tty);
#     if this program fails or dies first, FD closes empty, so a reader never waits for nothing;
#  5. relays stdin to the master (only with --stdin) and the master to stdout, with select(2);
#  6. ends when the master reports EIO (every slave closed: the kernel flushes what the container
#     wrote before it reports EIO, so nothing is lost), or when PID1 is gone (pidfd_open(2)) and
#     what is left has been read: a container that died before opening the slave ends it too.
# --detach (`run -d -t`): the caller's terminal is not touched and stdin never read; the container's
# output goes to stdout (the log). Without --stdin or --detach (`-t` without `-i`): output only,
# the caller's terminal stays as it is (Ctrl-C reaches tscontain, which forwards it, as in docker).
#
# End of input (--stdin and stdin at EOF: a pipe or file, or a terminal that hung up): the
# container's terminal gets its VEOF character (^D unless changed inside), as script(1) does, so
# `cat` ends. In canonical mode a VEOF ends the input only at the start of a line, so a last line
# without a newline gets one VEOF to deliver it and one to end the input. docker refuses `-it` with
# a stdin that is not a terminal; here it works like this.
#
# Signals: TERM and HUP end the relay (terminal restored first; --detach ignores HUP, it has no
# terminal). INT and QUIT are ignored: tscontain's supervisor forwards them to the container, and
# the relay keeps copying its output until it ends. In raw mode Ctrl-C is a byte like any other:
# it goes to the container's terminal, whose line discipline sends SIGINT to its foreground group.
#
# Constants: Linux ioctl numbers, open flags and errnos of the asm-generic family (x86_64, aarch64,
# riscv64, ...), written here because perl-base has no module with them (POSIX.pm costs tens of ms).
use strict;
use warnings;

my ($TCGETS, $TCSETS, $TIOCGWINSZ, $TIOCSWINSZ) = (0x5401, 0x5402, 0x5413, 0x5414);
my ($TIOCGPTN, $TIOCSPTLCK) = (0x80045430, 0x40045431);
my ($O_RDWR, $O_NOCTTY, $O_NONBLOCK, $O_CLOEXEC) = (02, 0400, 04000, 02000000);
my ($RESOLVE_NO_SYMLINKS, $RESOLVE_BENEATH) = (0x04, 0x08);
my ($SYS_pidfd_open, $SYS_openat2) = (434, 437);   # the same number on every architecture
my ($EINTR, $EIO, $EAGAIN, $ENOSYS) = (4, 5, 11, 38);
my $BUF = 65536;   # at most this much waits in either direction before reading that side stops

my ($stdin, $detach, $report, $pid);
while (@ARGV) {
  my $a = shift @ARGV;
  if ($a eq '--stdin') { $stdin = 1 }
  elsif ($a eq '--detach') { $detach = 1 }
  elsif ($a eq '--report-fd' && @ARGV) { $report = shift @ARGV }
  elsif (!defined $pid) { $pid = $a }
  else { usage() }
}
usage() unless defined $pid && $pid =~ /\A[1-9][0-9]*\z/ && defined $report && $report =~ /\A[0-9]+\z/;
usage() if $stdin && $detach;
$pid += 0;   # a number: syscall() passes strings as pointers

sub usage { print STDERR "usage: pty-relay.pl [--stdin | --detach] --report-fd FD PID1\n"; exit 2 }

# ---- the caller's terminal: saved before any change, restored on every way out ----
my $saved;   # the caller's termios (struct termios, 36 bytes), while it is in raw mode
sub restore {
  return unless defined $saved;
  my $t = $saved;
  undef $saved;
  ioctl(STDIN, $TCSETS, $t);
}
END { restore() }
sub fail { restore(); print STDERR "tscontain: pty-relay: @_\n"; exit 1 }

$SIG{PIPE} = 'IGNORE';   # a closed stdout is an EPIPE, handled where it happens
$SIG{INT} = $SIG{QUIT} = 'IGNORE';
for my $sig ('TERM', $detach ? () : 'HUP') {
  # die of the signal itself (perl runs this handler with it blocked: it arrives on return)
  $SIG{$sig} = sub { restore(); $SIG{$sig} = 'DEFAULT'; kill $sig, $$ };
}
$SIG{HUP} = 'IGNORE' if $detach;

# ---- the container's ptmx ----
# The pidfd first: it names this very process, whatever happens to the number later.
my $pidfd = syscall($SYS_pidfd_open, $pid, 0);
fail("no process $pid: $!") if $pidfd < 0 && $! != $ENOSYS;
my $master = open_ptmx();
my $mfd = fileno($master);
fail("container $pid ended before its terminal was made") if $pidfd >= 0 && readable($pidfd, 0);
my $z = pack('i', 0);
ioctl($master, $TIOCSPTLCK, $z) or fail("unlock the pseudo-terminal (TIOCSPTLCK): $!");
my $nb = pack('i', 0);
ioctl($master, $TIOCGPTN, $nb) or fail("pseudo-terminal number (TIOCGPTN): $!");
my $n = unpack('i', $nb);

sub open_ptmx {
  sysopen(my $root, "/proc/$pid/root", 0) or fail("open /proc/$pid/root: $!");
  my $path = 'dev/pts/ptmx';
  my $how = pack('QQQ', $O_RDWR | $O_NOCTTY | $O_NONBLOCK | $O_CLOEXEC, 0, $RESOLVE_BENEATH | $RESOLVE_NO_SYMLINKS);
  my $fd = syscall($SYS_openat2, fileno($root), $path, $how, length $how);
  if ($fd < 0 && $! == $ENOSYS) {
    # Linux < 5.6: no symlink on the way, checked with lstat (the container has not started yet,
    # nothing in it can change the tree between the check and the open)
    for my $p ('dev', 'dev/pts', 'dev/pts/ptmx') {
      fail("/proc/$pid/root/$p: missing, or a symbolic link") if !lstat("/proc/$pid/root/$p") || -l _;
    }
    sysopen(my $m, "/proc/$pid/root/$path", $O_RDWR | $O_NOCTTY | $O_NONBLOCK) or fail("open $path: $!");
    return check_ptmx($m);
  }
  fail("open the container's /dev/pts/ptmx: $!") if $fd < 0;
  open(my $m, '+<&=', $fd) or fail("fdopen: $!");
  return check_ptmx($m);
}

# A ptmx (char 5:2) of a devpts instance other than the host's: a pty of the host's devpts would not
# be the container's /dev/pts/N at all.
sub check_ptmx {
  my ($m) = @_;
  my @st = stat($m) or fail("stat ptmx: $!");
  my ($major, $minor) = ((($st[6] >> 8) & 0xfff) | (($st[6] >> 32) & ~0xfff), ($st[6] & 0xff) | (($st[6] >> 12) & ~0xff));
  fail("the container's /dev/pts/ptmx is not a ptmx") unless ($st[2] & 0170000) == 0020000 && $major == 5 && $minor == 2;
  my @host = stat('/dev/pts/ptmx');
  fail("the container's /dev/pts is the host's devpts (not a new instance, or PID 1 has not switched root yet)")
    if @host && $host[0] == $st[0];
  return $m;
}

# ---- the caller's terminal ----
my $ctty;   # where the window size comes from: the first of stdout, stdin, stderr that is a terminal
unless ($detach) {
  for my $fh (\*STDOUT, \*STDIN, \*STDERR) { if (-t $fh) { $ctty = $fh; last } }
}
sub copy_size {
  my $ws = "\0" x 8;
  ioctl($ctty, $TIOCGWINSZ, $ws) and ioctl($master, $TIOCSWINSZ, $ws);
}
if ($ctty) {
  $SIG{WINCH} = \&copy_size;   # before the first copy: a resize in between is not missed
  copy_size();
}
make_raw() if $stdin && -t STDIN;

sub make_raw {
  my $t = "\0" x 36;
  ioctl(STDIN, $TCGETS, $t) or return;
  $saved = $t;
  my ($i, $o, $c, $l, $line, @cc) = unpack('L4 C C19', $t);
  $i &= ~(01 | 02 | 010 | 040 | 0100 | 0200 | 0400 | 02000);   # IGNBRK BRKINT PARMRK ISTRIP INLCR IGNCR ICRNL IXON
  $o &= ~01;                                                    # OPOST
  $l &= ~(010 | 0100 | 02 | 01 | 0100000);                      # ECHO ECHONL ICANON ISIG IEXTEN
  $c = ($c & ~(060 | 0400)) | 060;                              # CSIZE PARENB off, CS8
  @cc[6, 5] = (1, 0);                                           # VMIN 1, VTIME 0
  my $raw = pack('L4 C C19', $i, $o, $c, $l, $line, @cc);
  ioctl(STDIN, $TCSETS, $raw) or fail("raw mode on the terminal: $!");
}

# ---- the start gate ----
{
  open(my $r, '>&=', $report + 0) or fail("report fd $report: $!");
  print {$r} "/dev/pts/$n\n" or fail("report: $!");
  close($r) or fail("report: $!");
}

# ---- relay ----
my ($in_open, $out_ok) = ($stdin ? 1 : 0, 1);
my ($to_m, $to_out, $last, $draining) = ('', '', "\n", 0);
for (;;) {
  my ($r, $w) = ('', '');
  vec($r, $mfd, 1) = 1 if length($to_out) < $BUF;
  vec($r, 0, 1) = 1 if $in_open && length($to_m) < $BUF;
  vec($r, $pidfd, 1) = 1 if $pidfd >= 0;
  vec($w, $mfd, 1) = 1 if length $to_m;
  vec($w, 1, 1) = 1 if length $to_out;
  if (select($r, $w, undef, undef) < 0) {
    next if $! == $EINTR;   # SIGWINCH
    fail("select: $!");
  }
  if (vec($r, $mfd, 1)) { last unless from_master() }
  if (vec($r, 0, 1)) { from_stdin() }
  if (vec($w, $mfd, 1)) { to_master() }
  if (vec($w, 1, 1)) { flush_out(0) }
  if ($pidfd >= 0 && vec($r, $pidfd, 1)) {
    # PID 1 is gone, and with it every process of its PID namespace, so every slave is closed:
    # read to EIO (or EAGAIN if the container never opened one)
    $draining = 1;
    1 while from_master();
    last;
  }
}
flush_out(1);
restore();
exit 0;

# false: the master is done (EIO: no slave open any more; EAGAIN after PID 1's end: nothing left)
sub from_master {
  my $got = sysread($master, my $buf, $BUF);
  if (!defined $got) {
    return 1 if $! == $EINTR;
    return 0 if $! != $EAGAIN;   # EIO: every slave is closed
    return !$draining;           # nothing now; after PID 1's end: nothing left
  }
  return 0 if $got == 0;
  $to_out .= $buf if $out_ok;
  flush_out(0);
  return 1;
}

sub from_stdin {
  my $got = sysread(STDIN, my $buf, $BUF);
  return if !defined $got && ($! == $EAGAIN || $! == $EINTR);
  if ($got) { $to_m .= $buf; $last = substr($buf, -1); return }
  $in_open = 0;   # EOF (or an error such as EIO from a terminal that hung up)
  my $t = "\0" x 36;
  return unless ioctl($master, $TCGETS, $t);   # on a master: the slave's termios
  my ($l, @cc) = (unpack('L4 C C19', $t))[3, 5 .. 23];
  my $eof = $cc[4];
  return unless $eof;   # VEOF disabled inside
  my $icanon = $l & 02;
  my $at_line_start = grep { $_ eq $last } ("\n", chr($cc[4]), $cc[11] ? chr($cc[11]) : (), $cc[16] ? chr($cc[16]) : ());
  $to_m .= chr($eof) x ($icanon && !$at_line_start ? 2 : 1);
}

sub to_master {
  my $put = syswrite($master, $to_m);
  if (defined $put) { substr($to_m, 0, $put) = ''; return }
  return if $! == $EAGAIN || $! == $EINTR;
  ($to_m, $in_open) = ('', 0);   # EIO: no slave open; the output side ends the relay
}

# Write what is pending to stdout; $all: wait until it is all written (stdout may be non-blocking:
# it is the caller's open file description, its flags are not ours to change).
sub flush_out {
  my ($all) = @_;
  while (length $to_out && $out_ok) {
    my $put = syswrite(STDOUT, $to_out);
    if (defined $put) { substr($to_out, 0, $put) = ''; next }
    if ($! == $EAGAIN || $! == $EINTR) {
      return unless $all;
      my $w = ''; vec($w, 1, 1) = 1;
      select(undef, $w, undef, undef);
      next;
    }
    ($to_out, $out_ok) = ('', 0);   # EPIPE or worse: the output is dropped, the container still drained
  }
}

sub readable {
  my ($fd, $timeout) = @_;
  my $r = ''; vec($r, $fd, 1) = 1;
  return select($r, undef, undef, $timeout) > 0;
}
