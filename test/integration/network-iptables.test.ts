// The networking steps of network.test.ts again, with the iptables firewall (chains TSCONTAIN-*)
// instead of nft: the same traffic, conflicts, gc and prune, in namespaces of the test's own.
import test from 'ava';

// the v2 guest leaves them to the native suite: the firewall does not depend on the cgroup version
if (process.env.TSCONTAIN_TEST_NO_IPTABLES) test.skip('the iptables backend (TSCONTAIN_TEST_NO_IPTABLES)', () => {});
else {
  process.env.TSCONTAIN_FIREWALL = 'iptables';
  await import('./network.test.js');
}
