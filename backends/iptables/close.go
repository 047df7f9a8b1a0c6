package iptables

// Close keeps the chains and rules: traffic keeps flowing and the next
// process adopts them (Cleanup removes them). The datapath runs the
// iptables tools per sync and holds no handle to release.
func (d *Datapath) Close() error { return nil }
