package nftables

// Close keeps the tables and their rules: traffic keeps flowing and the
// next process adopts them (Cleanup removes them). The datapath opens a
// netlink connection per operation, so there is no handle to release.
func (d *Datapath) Close() error { return nil }
