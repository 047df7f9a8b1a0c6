package kube

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ClientOptions are kube-proxy's clientConnection settings.
type ClientOptions struct {
	// Kubeconfig is a kubeconfig file; empty means the in-cluster config
	// (the pod's service account).
	Kubeconfig string
	// QPS and Burst bound the client's request rate; zero keeps
	// client-go's defaults.
	QPS   float32
	Burst int
	// ContentType is the wire format of requests, e.g.
	// "application/vnd.kubernetes.protobuf" (kube-proxy's default);
	// AcceptContentTypes what responses may use. Empty keeps JSON.
	ContentType        string
	AcceptContentTypes string
	// UserAgent names the client in the API server's logs and audit.
	UserAgent string
}

// RESTConfig builds the client configuration of opts.
func RESTConfig(opts ClientOptions) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if opts.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", opts.Kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, errors.New("no kubeconfig given and not running in a Kubernetes pod " +
				"(KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set): give --kubeconfig, or --services FILE for a services file")
		}
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
	}
	if opts.QPS > 0 {
		cfg.QPS = opts.QPS
	}
	if opts.Burst > 0 {
		cfg.Burst = opts.Burst
	}
	if opts.ContentType != "" {
		cfg.ContentType = opts.ContentType
	}
	if opts.AcceptContentTypes != "" {
		cfg.AcceptContentTypes = opts.AcceptContentTypes
	}
	cfg.UserAgent = opts.UserAgent
	if cfg.UserAgent == "" {
		cfg.UserAgent = "lbkit-proxyd"
		if h, err := os.Hostname(); err == nil {
			cfg.UserAgent += " (" + h + ")"
		}
	}
	return cfg, nil
}

// NewClient returns a clientset for opts.
func NewClient(opts ClientOptions) (kubernetes.Interface, error) {
	cfg, err := RESTConfig(opts)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}
