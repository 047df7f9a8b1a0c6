package file

import (
	"fmt"
	"strings"
)

// dump formats entries for failure messages.
func dump(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "  %+v\n", *e.Service)
		for _, ep := range e.Endpoints {
			fmt.Fprintf(&b, "    %+v\n", ep)
		}
	}
	return b.String()
}
