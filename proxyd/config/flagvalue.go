package config

import (
	"strconv"
	"strings"
)

// int32Value is a flag.Value for an int32.
type int32Value struct{ p *int32 }

// Set parses a decimal (or 0x-prefixed) 32-bit integer.
func (v int32Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, 32)
	if err != nil {
		return err
	}
	*v.p = int32(n)
	return nil
}

// String returns the value in decimal.
func (v int32Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(int(*v.p))
}

// listValue is a flag.Value for a comma-separated list. The first use of the
// flag replaces the default; repeating the flag appends.
type listValue struct {
	p   *[]string
	set bool
}

// Set splits s at commas, dropping blanks, so "" sets an empty list.
func (v *listValue) Set(s string) error {
	if !v.set {
		*v.p = []string{}
		v.set = true
	}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*v.p = append(*v.p, item)
		}
	}
	return nil
}

// String joins the list with commas.
func (v *listValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
