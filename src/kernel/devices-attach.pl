# devices-attach.pl CGROUP_DIR PROGRAM_HEX
# Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (eBPF instructions, hex) and attaches it to a
# cgroup v2 directory with BPF_F_ALLOW_MULTI: from then on the kernel asks it before any process
# in that cgroup opens or makes a device node. The kernel keeps the program attached after this
# process exits, as long as the cgroup exists. Two bpf(2) calls through perl's builtin syscall();
# only perl-base modules. Run on the host, before any process is in the cgroup. bpf(2).
# No module but strict: each one costs milliseconds on every container start.
use strict;

my ($dir, $hex) = @ARGV;
die "usage: devices-attach.pl CGROUP_DIR PROGRAM_HEX\n"
  unless @ARGV == 2 && $hex =~ /\A(?:[0-9a-f]{16})+\z/;

my %SYS_bpf = (x86_64 => 321, aarch64 => 280);
# kernel.arch (Linux 6.1+) is uname's machine without loading POSIX.pm; older kernels: POSIX
my $machine;
if (open(my $h, '<', '/proc/sys/kernel/arch')) { $machine = <$h> }
$machine = (do { require POSIX; POSIX::uname() })[4] unless defined $machine;
chomp $machine;
my $bpf = $SYS_bpf{$machine} or die "devices-attach.pl: no bpf(2) number known for $machine\n";

# (plain variables: `use constant` loads warnings.pm, which costs more than the rest)
my ($BPF_PROG_LOAD, $BPF_PROG_ATTACH) = (5, 8);
my ($BPF_PROG_TYPE_CGROUP_DEVICE, $BPF_CGROUP_DEVICE, $BPF_F_ALLOW_MULTI) = (15, 6, 2);

my $insns = pack('H*', $hex);
my $license = "GPL\0";
my $log = "\0" x 65536;

# the address of a string's buffer (the string must live as long as the call)
sub addr { return unpack('Q', pack('p', $_[0])) }

# union bpf_attr for BPF_PROG_LOAD, up to prog_name: prog_type, insn_cnt, insns, license,
# log_level, log_size, log_buf, kern_version, prog_flags, prog_name[16]
sub load {
  my ($log_level) = @_;
  my $attr = pack('L L Q Q L L Q L L a16',
    $BPF_PROG_TYPE_CGROUP_DEVICE, length($insns) / 8, addr($insns), addr($license),
    $log_level, $log_level ? length($log) : 0, $log_level ? addr($log) : 0, 0, 0, 'tscontain_dev');
  return syscall($bpf, $BPF_PROG_LOAD, $attr, length $attr);
}

my $fd = load(0);
if ($fd < 0) {
  my $err = "$!";
  load(1);    # again, for the verifier's log
  (my $text = $log) =~ s/\0.*//s;
  die "devices-attach.pl: BPF_PROG_LOAD: $err\n$text";
}

-d $dir or die "devices-attach.pl: $dir: not a directory\n";
sysopen(my $cg, $dir, 0) or die "devices-attach.pl: $dir: $!\n";    # 0: O_RDONLY

# BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, attach_flags
my $attach = pack('L L L L', fileno($cg), $fd, $BPF_CGROUP_DEVICE, $BPF_F_ALLOW_MULTI);
syscall($bpf, $BPF_PROG_ATTACH, $attach, length $attach) == 0
  or die "devices-attach.pl: BPF_PROG_ATTACH to $dir: $!\n";
