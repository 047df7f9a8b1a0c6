package iptables

import (
	"context"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/lb"
)

func TestWithJumps(t *testing.T) {
	js := jumps()
	in := "*nat\n:LBKIT-SERVICES - [0:0]\nCOMMIT\n"
	got := string(withJumps([]byte(in), []jump{js[0], js[3]}))
	want := "*nat\n:LBKIT-SERVICES - [0:0]\n" +
		`-I PREROUTING 1 -m comment --comment "lbkit service frontends" -j LBKIT-SERVICES` + "\nCOMMIT\n" +
		"*filter\n" +
		`-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment "lbkit frontends without endpoints" -j LBKIT-NOENDPOINTS` + "\nCOMMIT\n"
	if got != want {
		t.Errorf("withJumps:\n got %q\nwant %q", got, want)
	}
	if got := withJumps([]byte(in), nil); string(got) != in {
		t.Errorf("withJumps without jumps changed the input: %q", got)
	}
}

// TestJumpsComeBack: a jump from a built-in chain that an outsider deleted
// is back after the next full sync, on both flavours, and never doubled.
func TestJumpsComeBack(t *testing.T) {
	for _, f := range flavours {
		t.Run(string(f), func(t *testing.T) {
			ns := testNetns(t)
			d := newTest(t, f, ns, Options{})
			ctx := context.Background()
			s := (*lb.Snapshot)(nil).With(svcState("web", []lb.Frontend{clusterIP("198.18.100.1", 80, lb.TCP)}, "198.18.2.10:80"))
			if err := d.Sync(ctx, s, full(s)); err != nil {
				t.Fatal(err)
			}
			jump := `-A PREROUTING -m comment --comment "lbkit service frontends" -j LBKIT-SERVICES`
			restoreIn(t, f, ns, false, "*nat\n-D"+strings.TrimPrefix(jump, "-A")+"\nCOMMIT\n")
			if strings.Contains(saveAll(t, f, ns), jump) {
				t.Fatal("the jump could not be deleted")
			}
			for range 2 {
				if err := d.Sync(ctx, s, full(s)); err != nil {
					t.Fatal(err)
				}
			}
			if n := strings.Count(saveAll(t, f, ns), jump); n != 1 {
				t.Errorf("after two full syncs the jump is there %d times, want once", n)
			}
		})
	}
}
