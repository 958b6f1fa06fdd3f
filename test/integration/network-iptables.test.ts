// The networking steps of network.test.ts again, with the iptables firewall (chains TSCONTAIN-*)
// instead of nft: the same traffic, conflicts, gc and prune, in namespaces of the test's own.
process.env.TSCONTAIN_FIREWALL = 'iptables';
await import('./network.test.js');
