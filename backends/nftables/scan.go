package nftables

import (
	"context"
	"fmt"
)

// ScanOptions says where Scan looks.
type ScanOptions struct {
	// Netns is the network namespace to read (e.g. /var/run/netns/X);
	// empty means the process's own.
	Netns string
	// Table is the table name the datapath was given (Options.Table);
	// empty means DefaultTable.
	Table string
}

// Scan lists the datapath's tables in the namespace, without changing
// anything: one line per table, such as "nftables: table ip lbkit".
// Datapath.Cleanup with the same Netns and Table removes them.
func Scan(ctx context.Context, o ScanOptions) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nftables: scan: %w", err)
	}
	c, err := Options{Netns: o.Netns, Table: o.Table}.resolve()
	if err != nil {
		return nil, err
	}
	cn, err := c.dial()
	if err != nil {
		return nil, err
	}
	defer cn.close()
	var found []string
	for _, v6 := range []bool{false, true} {
		ok, err := cn.tableExists(v6)
		if err != nil {
			return nil, fmt.Errorf("nftables: scan%s: %w", c.where(), err)
		}
		if ok {
			found = append(found, fmt.Sprintf("nftables: table %s %s", familyName(v6), c.table))
		}
	}
	return found, nil
}
