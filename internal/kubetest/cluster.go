package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is an API server started by Start.
type Cluster struct {
	// Dir holds the cluster's state, certificates and logs
	// (apiserver.log, etcd.log); it is the test's temporary directory.
	Dir string
	// Server is the API server's URL, https://127.0.0.1:PORT.
	Server string
	// CAFile is the CA certificate that signed the server's certificate.
	CAFile string
	// AdminKubeconfig is a kubeconfig with the admin token (system:masters).
	AdminKubeconfig string
	// AdminConfig is the client configuration of AdminKubeconfig.
	AdminConfig *rest.Config
	// Admin is a clientset with the admin token.
	Admin kubernetes.Interface
}

// upTimeout bounds `kube-up.sh up`, which gives the API server 60 s to
// become ready after writing its certificates.
const upTimeout = 3 * time.Minute

// Start starts etcd and kube-apiserver on 127.0.0.1 with
// `hack/kube-up.sh up DIR` (DIR is t.TempDir()), stops them when the test
// ends (`down DIR`, then it checks that both processes are gone), and
// returns the cluster. It skips the test when kube-apiserver is not built
// (see the package documentation) or a tool is missing.
func Start(t testing.TB) *Cluster {
	t.Helper()
	script := filepath.Join(RepoRoot(t), "hack", "kube-up.sh")
	requireAPIServer(t, script)
	requireTools(t)

	dir := t.TempDir()
	c := &Cluster{Dir: dir}
	// Registered before up, so that whatever up started is stopped even
	// when up fails half-way; it runs before t.TempDir's removal.
	t.Cleanup(func() { c.stop(t, script) })
	t.Logf("kubetest: starting etcd and kube-apiserver in %s (if this test is killed: %s down %s)", dir, script, dir)

	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "up", dir)
	cmd.WaitDelay = 10 * time.Second
	began := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s up %s: %v\n%s\nlast lines of apiserver.log:\n%s", script, dir, err, tail(out, 30), tailFile(filepath.Join(dir, "apiserver.log"), 30))
	}
	env, err := readEnv(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	c.AdminKubeconfig = env["KUBECONFIG"]
	if c.AdminKubeconfig == "" {
		t.Fatalf("%s/env names no KUBECONFIG", dir)
	}
	kc, err := clientcmd.LoadFromFile(c.AdminKubeconfig)
	if err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	ctxName := kc.Contexts[kc.CurrentContext]
	if ctxName == nil || kc.Clusters[ctxName.Cluster] == nil {
		t.Fatalf("admin kubeconfig %s: no cluster for current context %q", c.AdminKubeconfig, kc.CurrentContext)
	}
	c.Server = kc.Clusters[ctxName.Cluster].Server
	c.CAFile = kc.Clusters[ctxName.Cluster].CertificateAuthority
	c.AdminConfig, err = clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig)
	if err != nil {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	c.AdminConfig.UserAgent = "lbkit-kubetest"
	c.Admin, err = kubernetes.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	t.Logf("kubetest: kube-apiserver ready at %s, %v after kube-up.sh up began", c.Server, time.Since(began).Round(time.Millisecond))
	return c
}

// stop runs `kube-up.sh down DIR` and makes sure etcd and kube-apiserver
// are gone: it waits for them, and kills what is still there after 30 s
// (an error: down should have stopped it).
func (c *Cluster) stop(t testing.TB, script string) {
	t.Helper()
	pids := map[string]int{}
	for _, name := range []string{"apiserver", "etcd"} {
		b, err := os.ReadFile(filepath.Join(c.Dir, name+".pid"))
		if err != nil {
			continue // never started
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			pids[name] = pid
		}
	}
	began := time.Now()
	if out, err := exec.Command(script, "down", c.Dir).CombinedOutput(); err != nil {
		t.Errorf("%s down %s: %v\n%s", script, c.Dir, err, out)
	}
	for name, pid := range pids {
		if waitGone(pid, 30*time.Second) {
			t.Logf("kubetest: %s (pid %d) stopped, %v after kube-up.sh down began", name, pid, time.Since(began).Round(time.Millisecond))
			continue
		}
		t.Errorf("%s (pid %d) still runs 30 s after kube-up.sh down; killing it", name, pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 10*time.Second)
	}
}

// waitGone waits until process pid has exited (or is a zombie), for at
// most limit; it reports whether it has.
func waitGone(pid int, limit time.Duration) bool {
	end := time.Now().Add(limit)
	for {
		if !alive(pid) {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether pid runs: it exists and is not a zombie waiting
// for its parent (the processes up started are reparented when the
// script exits).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// readEnv reads the KEY=VALUE lines of kube-up.sh's env file.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	defer f.Close()
	env := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok {
			env[k] = v
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("kubetest: read %s: %w", path, err)
	}
	return env, nil
}

// RepoRoot returns the module root: the nearest directory at or above the
// working directory (a test's is its package directory) with a go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			t.Fatalf("no go.mod at or above %s", dir)
		}
		d = parent
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailFile returns the last n lines of a file, or why it cannot.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return tail(b, n)
}
