// Package config is the configuration of proxyd, lbkit's kube-proxy
// replacement: the Config type, its defaults, the config file parser, the
// validation of every field and the command-line flags that override it.
//
// The config file is kube-proxy's own KubeProxyConfiguration
// (apiVersion kubeproxy.config.k8s.io/v1alpha1), so the file an operator
// already has for kube-proxy loads unchanged: the fields lbkit implements take
// effect, the kube-proxy fields lbkit does not implement are accepted with a
// warning, and anything else is an error naming the file, line and field.
// lbkit's own settings live in an extra "lbkit" section.
//
// The precedence is kube-proxy's defaults, then the file, then the flags that
// were given on the command line:
//
//	fs := flag.NewFlagSet("proxyd", flag.ContinueOnError)
//	flags := config.NewFlags(fs)
//	if err := fs.Parse(os.Args[1:]); err != nil { ... }
//	cfg, warnings, err := flags.Resolve(fs)
//
// See README.md in this directory for every field, its default and what
// proxyd does with it.
package config
