package kubernetes_test

import (
	"maps"
	"path"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// hostMount is a hostPath volume and where the container mounts it.
type hostMount struct {
	mountPath string
	typ       corev1.HostPathType
	readOnly  bool
}

// modeWant is what a mode's DaemonSet must have beyond the common parts.
type modeWant struct {
	args       []string // after --config and --hostname-override
	privileged bool
	caps       []corev1.Capability // added, with ALL dropped (unprivileged kernel modes)
	nonRoot    bool
	hostPaths  map[string]hostMount // by host path: exactly these
}

var modeWants = map[string]modeWant{
	"ipvs": {
		privileged: true,
		hostPaths:  map[string]hostMount{"/lib/modules": {"/lib/modules", corev1.HostPathDirectory, true}},
	},
	"iptables": {
		args:      []string{"--mode=iptables", "--iptables-flavour=nft"},
		caps:      []corev1.Capability{"NET_ADMIN", "NET_RAW"},
		hostPaths: map[string]hostMount{"/run/xtables.lock": {"/run/xtables.lock", corev1.HostPathFileOrCreate, false}},
	},
	"nftables": {
		args: []string{"--mode=nftables"},
		caps: []corev1.Capability{"NET_ADMIN"},
	},
	"ebpf": {
		args: []string{"--mode=ebpf", "--ebpf-socket-lb", "--ebpf-cgroup-path=/run/lbkit/cgroupv2"},
		caps: []corev1.Capability{"BPF", "NET_ADMIN", "PERFMON", "SYS_RESOURCE"},
		hostPaths: map[string]hostMount{
			"/sys/fs/bpf":    {"/sys/fs/bpf", corev1.HostPathDirectory, false},
			"/sys/fs/cgroup": {"/run/lbkit/cgroupv2", corev1.HostPathDirectory, true},
		},
	},
	"userspace": {
		args:    []string{"--mode=userspace"},
		nonRoot: true,
	},
}

func TestDaemonSets(t *testing.T) {
	b := readBase(t)
	port := healthzPort(t, readConfig(t, b.cm))
	all := readVariants(t)
	all["ipvs"] = b.ds // the base: its mode is the ConfigMap's
	for mode, ds := range all {
		t.Run(mode, func(t *testing.T) {
			want, ok := modeWants[mode]
			if !ok {
				t.Fatalf("no expectations for mode %q", mode)
			}
			c := checkPodSpec(t, b, ds)
			checkArgs(t, c, want.args)
			checkProbes(t, c, port)
			checkPrivileges(t, c, want)
			checkHostPaths(t, &ds.Spec.Template.Spec, c, want.hostPaths)
		})
	}
}

// checkPodSpec checks what every variant shares and returns the container.
func checkPodSpec(t *testing.T, b base, ds *appsv1.DaemonSet) *corev1.Container {
	t.Helper()
	if ds.Namespace != namespace || ds.Name != name {
		t.Errorf("DaemonSet %s/%s, want %s/%s", ds.Namespace, ds.Name, namespace, name)
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the pod template's labels %v (%v)", ds.Spec.Selector, ds.Spec.Template.Labels, err)
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		t.Errorf("updateStrategy %q, want RollingUpdate", ds.Spec.UpdateStrategy.Type)
	}
	pod := &ds.Spec.Template.Spec
	if !pod.HostNetwork {
		t.Error("hostNetwork is false")
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", pod.PriorityClassName)
	}
	if pod.ServiceAccountName != b.sa.Name {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, b.sa.Name)
	}
	if want := []corev1.Toleration{{Operator: corev1.TolerationOpExists}}; !slices.Equal(pod.Tolerations, want) {
		t.Errorf("tolerations %+v, want %+v (every taint, as kube-proxy)", pod.Tolerations, want)
	}
	if pod.NodeSelector[corev1.LabelOSStable] != "linux" {
		t.Errorf("nodeSelector %v, want %s: linux", pod.NodeSelector, corev1.LabelOSStable)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := &pod.Containers[0]
	if c.Image != image {
		t.Errorf("image %q, want %q", c.Image, image)
	}
	if len(c.Command) != 0 {
		t.Errorf("command %q: the image's entrypoint is proxyd; give args only", c.Command)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if f := env["NODE_NAME"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME is %+v, want the fieldRef spec.nodeName", env["NODE_NAME"])
	}
	for v, key := range map[string]string{"KUBERNETES_SERVICE_HOST": "apiServerHost", "KUBERNETES_SERVICE_PORT": "apiServerPort"} {
		f := env[v].ValueFrom
		if f == nil || f.ConfigMapKeyRef == nil || f.ConfigMapKeyRef.Name != b.cm.Name || f.ConfigMapKeyRef.Key != key ||
			f.ConfigMapKeyRef.Optional == nil || !*f.ConfigMapKeyRef.Optional {
			t.Errorf("%s is %+v, want the optional key %s of ConfigMap %s", v, env[v], key, b.cm.Name)
		}
	}
	req := c.Resources.Requests
	if req.Cpu().IsZero() || req.Memory().IsZero() {
		t.Errorf("resource requests %v, want cpu and memory", req)
	}
	if len(c.Resources.Limits) != 0 {
		t.Errorf("resource limits %v: a throttled or killed proxy delays the node's Service changes", c.Resources.Limits)
	}
	checkConfigVolume(t, pod, c, b.cm.Name)
	return c
}

// checkConfigVolume checks that --config names the ConfigMap's config.yaml.
func checkConfigVolume(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, cm string) {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.ConfigMap == nil || v.ConfigMap.Name != cm {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name != v.Name {
				continue
			}
			if !m.ReadOnly {
				t.Errorf("the ConfigMap is mounted writable at %s", m.MountPath)
			}
			for _, it := range v.ConfigMap.Items {
				if it.Key == "config.yaml" && path.Join(m.MountPath, it.Path) == configPath {
					return
				}
			}
		}
	}
	t.Errorf("no volume puts ConfigMap %s's config.yaml at %s", cm, configPath)
}

func checkArgs(t *testing.T, c *corev1.Container, extra []string) {
	t.Helper()
	want := append([]string{"--config=" + configPath, "--hostname-override=$(NODE_NAME)"}, extra...)
	if !slices.Equal(c.Args, want) {
		t.Errorf("args %q, want %q", c.Args, want)
	}
}

// checkProbes checks readiness on /healthz and liveness on /livez, both on
// the config's healthz port.
func checkProbes(t *testing.T, c *corev1.Container, port int32) {
	t.Helper()
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/healthz"}, {"livenessProbe", c.LivenessProbe, "/livez"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s is not an HTTP GET", p.what)
			continue
		}
		g := p.probe.HTTPGet
		got := g.Port.IntVal
		if g.Port.StrVal != "" {
			got = 0
			for _, cp := range c.Ports {
				if cp.Name == g.Port.StrVal {
					got = cp.ContainerPort
				}
			}
		}
		if g.Path != p.path || got != port || (g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP) || g.Host != "" {
			t.Errorf("%s GETs %s://%s:%s%s (port %d), want http://NODE:%d%s", p.what, g.Scheme, g.Host, g.Port.String(), g.Path, got, port, p.path)
		}
	}
}

func checkPrivileges(t *testing.T, c *corev1.Container, want modeWant) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("no securityContext")
	}
	if got := sc.Privileged != nil && *sc.Privileged; got != want.privileged {
		t.Errorf("privileged %v, want %v", got, want.privileged)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the root filesystem is writable")
	}
	if want.privileged {
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	var add, drop []corev1.Capability
	if sc.Capabilities != nil {
		add, drop = slices.Sorted(slices.Values(sc.Capabilities.Add)), sc.Capabilities.Drop
	}
	if !slices.Equal(drop, []corev1.Capability{"ALL"}) || !slices.Equal(add, want.caps) {
		t.Errorf("capabilities drop %v add %v, want drop [ALL] add %v", drop, add, want.caps)
	}
	root := sc.RunAsUser != nil && *sc.RunAsUser == 0
	if want.nonRoot {
		if root || sc.RunAsUser == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("runAsUser %v, runAsNonRoot %v: want a non-root user", sc.RunAsUser, sc.RunAsNonRoot)
		}
	} else if !root {
		// Only root keeps the added capabilities across exec.
		t.Errorf("runAsUser %v, want 0: a non-root process loses the capabilities", sc.RunAsUser)
	}
}

// checkHostPaths checks that the pod mounts exactly the host paths the
// mode needs, as it needs them.
func checkHostPaths(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, want map[string]hostMount) {
	t.Helper()
	got := map[string]hostMount{}
	for _, v := range pod.Volumes {
		if v.HostPath == nil {
			continue
		}
		hm := hostMount{}
		if v.HostPath.Type != nil {
			hm.typ = *v.HostPath.Type
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				hm.mountPath, hm.readOnly = m.MountPath, m.ReadOnly
			}
		}
		got[v.HostPath.Path] = hm
	}
	if !maps.Equal(got, want) {
		t.Errorf("host paths %+v, want %+v", got, want)
	}
}
