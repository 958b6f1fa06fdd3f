# seccomp-load.pl: installs a seccomp filter, then executes a command under it (seccomp(2)).
#   perl seccomp-load.pl [--nnp] [--flags=N] FILTER COMMAND [ARG...]
# FILTER is a file of struct sock_filter (8 bytes each, as src/kernel/seccomp.ts compiles them), or fd:N
# for a descriptor the caller opened (read, then closed, so the command does not inherit it).
# --nnp sets no_new_privs first; without it the kernel takes the filter only from a holder of
# CAP_SYS_ADMIN, so run this before capabilities are dropped (the ordering rule in src/kernel/seccomp.ts).
# --flags=N is passed to seccomp(2) as its SECCOMP_FILTER_FLAG_* bits (LOG 2, SPEC_ALLOW 4).
# Exit status when it cannot get as far as the command: 125; the command cannot run: 126, or 127 (not found).
#
# No `use` of any module, not even strict: this may run as the host's perl reached through the old root
# after pivot_root, where @INC points into the container's filesystem. Numbers for prctl(2) and seccomp(2)
# depend on the ABI of this perl binary (not on `uname -m`, which a 32-bit perl on a 64-bit kernel would
# get wrong), so they come from the e_machine field of its own ELF header.

sub fail { my ($status, $msg) = @_; print STDERR "tscontain: seccomp: $msg\n"; exit $status }

my ($nnp, $flags) = (0, 0);
while (@ARGV && $ARGV[0] =~ /^--/) {
  my $o = shift @ARGV;
  if ($o eq '--nnp') { $nnp = 1 }
  elsif ($o =~ /^--flags=(\d+)$/) { $flags = 0 + $1 }
  elsif ($o eq '--') { last }
  else { fail(125, "unknown option $o") }
}
@ARGV >= 2 or fail(125, 'usage: perl seccomp-load.pl [--nnp] [--flags=N] FILTER COMMAND [ARG...]');
my $from = shift @ARGV;

my $fh;
if ($from =~ /^fd:(\d+)$/) { open($fh, '<&=', $1) or fail(125, "fd $1: $!") }
else { open($fh, '<', $from) or fail(125, "$from: $!") }
binmode $fh;
my $filter = do { local $/; <$fh> };
close $fh;
my $size = defined $filter ? length $filter : 0;
($size > 0 && $size % 8 == 0 && $size <= 4096 * 8)
  or fail(125, "$from: not a seccomp filter ($size bytes; 8 per instruction, 1 to 4096 instructions)");

# e_machine => [prctl, seccomp]: EM_X86_64 62, EM_AARCH64 183 (little-endian, 64-bit).
my %numbers = (62 => [157, 317], 183 => [167, 277]);
my $elf = '';
for my $exe ('/proc/self/exe', $^X) {
  my $e;
  next unless open($e, '<', $exe);
  binmode $e;
  read($e, $elf, 20);
  close $e;
  last if length $elf == 20;
}
(length $elf == 20 && substr($elf, 0, 4) eq "\x7fELF" && ord(substr($elf, 5, 1)) == 1)
  or fail(125, 'cannot read the ELF header of this perl (little-endian only)');
my $machine = unpack('v', substr($elf, 18, 2));
my $nr = $numbers{$machine} or fail(125, "no syscall numbers for this perl's machine type $machine");
my ($prctl, $seccomp) = @$nr;

if ($nnp) {
  # PR_SET_NO_NEW_PRIVS = 38
  syscall($prctl, 38, 1, 0, 0, 0) == 0 or fail(125, "prctl(PR_SET_NO_NEW_PRIVS): $!");
}
# struct sock_fprog { unsigned short len; struct sock_filter *filter; }: 'p' is a pointer to $filter's bytes
my $prog = pack('S x![p] p', $size / 8, $filter);
# SECCOMP_SET_MODE_FILTER = 1
if (syscall($seccomp, 1, $flags, $prog) != 0) {
  my $why = "$!";
  fail(125, "seccomp(SECCOMP_SET_MODE_FILTER): $why"
    . ($! == 13 ? ' (needs CAP_SYS_ADMIN or --nnp)' : ''));
}
exec { $ARGV[0] } @ARGV;
fail($! == 2 ? 127 : 126, "$ARGV[0]: $!");
