package file

import (
	"errors"
	"fmt"

	"github.com/lbkit/lbkit/internal/yamlline"
	"github.com/lbkit/lbkit/lb"
)

// crossCheck reports what no single service shows: two services with one
// name, or one frontend in two services.
func (d *decoder) crossCheck(ls []*located) {
	names := make(map[lb.ServiceKey]*located, len(ls))
	type owner struct {
		l *located
		i int
	}
	frontends := make(map[lb.FrontendID]owner)
	for _, l := range ls {
		key := l.Service.Key
		if first, dup := names[key]; dup {
			d.add(l.lineOf("name"), yamlline.Join(l.path, "name"), nil, "%q is already the name of %s (line %d)", key, first.path, first.line)
			continue
		}
		names[key] = l
		for i, fe := range l.Service.Frontends {
			rel := yamlline.Index("frontends", i)
			if o, dup := frontends[fe.ID()]; dup && o.l != l {
				d.add(l.lineOf(rel), yamlline.Join(l.path, rel), nil, "%s is already a frontend of %s, service %q (line %d)",
					fe, o.l.path, o.l.Service.Key, o.l.lineOf(yamlline.Index("frontends", o.i)))
				continue
			}
			if _, dup := frontends[fe.ID()]; !dup {
				frontends[fe.ID()] = owner{l, i}
			}
		}
	}
}

// validate runs lb's own checks on a decoded entry and locates what they
// find in the file.
func (d *decoder) validate(l *located) {
	errs := flatten(l.Service.Validate())
	errs = append(errs, flatten(lb.ValidateEndpoints(l.Service.Key, l.Service, l.Endpoints))...)
	for _, err := range errs {
		line, field, msg := l.locate(err)
		d.add(line, field, err, "%s", msg)
	}
}

// locate maps an error about the entry's service (an *lb.ValidationError or
// *lb.UnsupportedError, from lb or from a Sink) to a line, field path and
// message. Other errors point at the service itself.
func (l *located) locate(err error) (line int, field, msg string) {
	var verr *lb.ValidationError
	var uerr *lb.UnsupportedError
	var cerr *lb.ConflictError
	switch {
	case errors.As(err, &verr):
		f := l.fileField(verr.Field)
		return l.lineOf(f), yamlline.Join(l.path, f), fmt.Sprintf("%s: %s", verr.Value, verr.Reason)
	case errors.As(err, &uerr):
		f := l.fileField(uerr.Field)
		return l.lineOf(f), yamlline.Join(l.path, f), fmt.Sprintf("%s is not supported by the %s datapath", uerr.Value, uerr.Datapath)
	case errors.As(err, &cerr):
		return l.lineOf(cerr.Field), yamlline.Join(l.path, cerr.Field),
			fmt.Sprintf("%s is already used by service %q; this service gets it when %q releases it", cerr.Frontend, cerr.Owner, cerr.Owner)
	}
	return l.line, l.path, err.Error()
}

// fileField translates a field name of lb's errors to the file's.
func (l *located) fileField(f string) string {
	switch f {
	case "key":
		return "name"
	case "affinity", "affinity.type":
		return "sessionAffinity"
	case "affinity.timeout":
		return "sessionAffinityTimeout"
	case "trafficPolicy":
		if l.Service.ExternalPolicy == lb.PolicyLocal {
			return "externalTrafficPolicy"
		}
		return "internalTrafficPolicy"
	}
	return f
}

// flatten splits an errors.Join tree into its leaves.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
