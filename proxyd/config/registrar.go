package config

import (
	"flag"
	"slices"
	"time"
)

// registrar defines override flags of one kind of value on a flag set.
type registrar struct {
	fs *flag.FlagSet
	f  *Flags
}

// strFlag is a string flag and its names.
type strFlag struct {
	names []string
	p     *string
}

// str defines a string flag under names; the names after the first are
// aliases (kube-proxy's spelling).
func (r registrar) str(names []string, def, usage string) strFlag {
	p := new(string)
	for i, n := range names {
		u := usage
		if i > 0 {
			u = "the same as --" + names[0] + " (kube-proxy's name)"
		}
		r.fs.StringVar(p, n, def, u)
	}
	return strFlag{names: names, p: p}
}

// strField defines a flag that sets one string field.
func (r registrar) strField(name, usage string, field func(*Config) *string, path string) {
	s := r.str([]string{name}, *field(Default()), usage)
	r.f.add(false, func(c *Config) []string { *field(c) = *s.p; return []string{path} }, name)
}

// addrField defines a flag that sets an IP:port field; a bare IP gets port.
func (r registrar) addrField(name, def, port, usage string, field func(*Config) *string, path string) {
	s := r.str([]string{name}, def, usage)
	r.f.add(false, func(c *Config) []string { *field(c) = withDefaultPort(*s.p, port); return []string{path} }, name)
}

// listField defines a comma-separated list flag that sets a []string field.
func (r registrar) listField(name, usage string, field func(*Config) *[]string, path string) {
	v := &listValue{p: new([]string)}
	r.fs.Var(v, name, usage)
	r.f.add(false, func(c *Config) []string { *field(c) = slices.Clone(*v.p); return []string{path} }, name)
}

// boolField defines a flag that sets bool fields.
func (r registrar) boolField(name string, def bool, usage string, fields func(*Config) []*bool, paths ...string) {
	p := new(bool)
	r.fs.BoolVar(p, name, def, usage)
	r.f.add(false, func(c *Config) []string {
		for _, f := range fields(c) {
			*f = *p
		}
		return paths
	}, name)
}

// int32Field defines a flag that sets int32 fields.
func (r registrar) int32Field(name string, def int32, usage string, fields func(*Config) []*int32, paths ...string) {
	p := new(int32)
	*p = def
	r.fs.Var(int32Value{p}, name, usage)
	r.f.add(false, func(c *Config) []string {
		for _, f := range fields(c) {
			*f = *p
		}
		return paths
	}, name)
}

// durField defines a flag that sets Duration fields.
func (r registrar) durField(name string, def Duration, usage string, fields func(*Config) []*Duration, paths ...string) {
	p := new(time.Duration)
	r.fs.DurationVar(p, name, def.Duration, usage)
	r.f.add(false, func(c *Config) []string {
		for _, f := range fields(c) {
			*f = D(*p)
		}
		return paths
	}, name)
}
