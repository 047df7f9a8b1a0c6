package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration string ("30s",
// "1h0m0s"), as Kubernetes' metav1.Duration is.
type Duration struct {
	time.Duration
}

// D returns a Duration of d.
func D(d time.Duration) Duration { return Duration{d} }

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.Duration.String(), nil }

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// parseDuration is time.ParseDuration with an error that names the value
// once: `invalid duration "30": time: missing unit in duration`.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		msg := strings.TrimSuffix(err.Error(), " "+strconv.Quote(s))
		return 0, fmt.Errorf("invalid duration %q: %s", s, msg)
	}
	return v, nil
}
