package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// e2eEnv must be "1" for the test to build the image.
	e2eEnv = "LBKIT_E2E"
	// repo is the image's repository; hack/image.sh tags VERSION and latest.
	repo = "localhost/lbkit/proxyd"
	// baseImage is the Debian base hack/image.sh makes and caches.
	baseImage = "localhost/lbkit-debian-base:bookworm"
	// maxImageBytes bounds the image: a slim Debian with the datapaths'
	// tools and proxyd. Past it, something large got in (docs, perl, the
	// build context).
	maxImageBytes = 150 << 20
	// buildTimeout only guards against a hung build.
	buildTimeout = 20 * time.Minute
)

// tagRE matches the reference hack/image.sh prints.
var tagRE = regexp.MustCompile(`^` + regexp.QuoteMeta(repo) + `:([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$`)

func TestImage(t *testing.T) {
	if os.Getenv(e2eEnv) != "1" {
		t.Skip("set LBKIT_E2E=1 (make e2e) to build and test the image")
	}
	if os.Geteuid() != 0 {
		t.Skip("building the image needs root (podman's storage, mmdebstrap's chroot)")
	}
	for _, tool := range []struct{ name, pkg string }{
		{"podman", "podman"},
		{"mmdebstrap", "mmdebstrap"},
		{"go", "golang (or Go in /usr/local/go/bin)"},
	} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Fatalf("%s not found: apt-get install %s (or make deps) [%s=1: the image test must run]", tool.name, tool.pkg, e2eEnv)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	ref, _ := buildImage(t, root)
	t.Logf("built %s in %s", ref, time.Since(start).Round(time.Second))
	m := tagRE.FindStringSubmatch(ref)
	if m == nil {
		t.Fatalf("hack/image.sh printed %q, want %s:VERSION", ref, repo)
	}
	version := m[1]

	t.Run("Version", func(t *testing.T) {
		out, _ := podman(t, root, "run", "--rm", "--network=none", ref, "version")
		want := regexp.MustCompile(`^proxyd ` + regexp.QuoteMeta(version) + ` \(go1\.\d+(\.\d+)?(, revision ([0-9a-f]{40}))?\)\n$`)
		got := want.FindStringSubmatch(out)
		if got == nil {
			t.Fatalf("proxyd version printed %q, want %q", out, want)
		}
		label, _ := podman(t, root, "image", "inspect", "--format",
			`{{index .Labels "org.opencontainers.image.revision"}}`, ref)
		label = strings.TrimSpace(label)
		if got[3] != label {
			t.Errorf("proxyd version names revision %q, the image's label %q", got[3], label)
		}
	})

	t.Run("Help", func(t *testing.T) {
		// proxyd prints its usage on stderr.
		_, out := podman(t, root, "run", "--rm", "--network=none", ref, "--help")
		for _, want := range []string{"usage: proxyd", "-mode string", "-kubeconfig string", "-services string", "-cleanup"} {
			if !strings.Contains(out, want) {
				t.Errorf("proxyd --help lacks %q:\n%s", want, out)
			}
		}
	})

	// The tools the datapaths call, each run from the image.
	for _, tool := range []struct{ name, want string }{
		{"iptables", "iptables v"},
		{"iptables-legacy", "(legacy)"},
		{"iptables-nft", "(nf_tables)"},
		{"nft", "nftables v"},
		{"conntrack", "conntrack v"},
		{"modprobe", "kmod version"},
	} {
		t.Run("Tool/"+tool.name, func(t *testing.T) {
			stdout, stderr := podman(t, root, "run", "--rm", "--network=none", "--entrypoint", tool.name, ref, "--version")
			out := stdout + stderr
			if !strings.Contains(out, tool.want) {
				t.Errorf("%s --version printed %q, want %q in it", tool.name, out, tool.want)
			}
		})
	}

	t.Run("Config", func(t *testing.T) {
		var cfg struct {
			ID     string `json:"Id"`
			Size   int64
			Config struct{ Entrypoint []string }
		}
		inspect(t, root, ref, &cfg)
		if want := []string{"/usr/local/bin/proxyd"}; !slices.Equal(cfg.Config.Entrypoint, want) {
			t.Errorf("entrypoint %q, want %q", cfg.Config.Entrypoint, want)
		}
		t.Logf("image size %d MB", cfg.Size>>20)
		if cfg.Size > maxImageBytes {
			t.Errorf("image is %d MB, more than %d MB", cfg.Size>>20, maxImageBytes>>20)
		}
		var latest struct {
			ID string `json:"Id"`
		}
		inspect(t, root, repo+":latest", &latest)
		if latest.ID != cfg.ID {
			t.Errorf("%s:latest is image %s, %s is %s", repo, latest.ID, ref, cfg.ID)
		}
	})

	t.Run("RebuildReusesBase", func(t *testing.T) {
		before := imageID(t, root, baseImage)
		again, log := buildImage(t, root)
		if again != ref {
			t.Errorf("second build printed %q, the first %q", again, ref)
		}
		if !strings.Contains(log, "reusing base image "+baseImage) {
			t.Errorf("second build did not reuse the cached base:\n%s", log)
		}
		if after := imageID(t, root, baseImage); after != before {
			t.Errorf("base image changed from %s to %s on a rebuild", before, after)
		}
	})
}

// buildImage runs hack/image.sh and returns the reference it printed and
// its log.
func buildImage(t *testing.T, root string) (ref, log string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("hack", "image.sh"))
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/image.sh: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1], stderr.String()
}

// podman runs podman through hack/image.sh, with the flags this machine
// needs, and returns its stdout and stderr; it fails the test if podman
// fails.
func podman(t *testing.T, root string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join("hack", "image.sh"), "podman"}, args...)...)
	cmd.Dir = root
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// inspect decodes what podman image inspect says of ref into v.
func inspect(t *testing.T, root, ref string, v any) {
	t.Helper()
	out, _ := podman(t, root, "image", "inspect", ref)
	var images []json.RawMessage
	if err := json.Unmarshal([]byte(out), &images); err != nil || len(images) != 1 {
		t.Fatalf("podman image inspect %s: want one image (%v):\n%s", ref, err, out)
	}
	if err := json.Unmarshal(images[0], v); err != nil {
		t.Fatalf("podman image inspect %s: %v\n%s", ref, err, out)
	}
}

// imageID returns the ID of ref in local storage.
func imageID(t *testing.T, root, ref string) string {
	t.Helper()
	var img struct {
		ID string `json:"Id"`
	}
	inspect(t, root, ref, &img)
	if img.ID == "" {
		t.Fatalf("podman image inspect %s: no ID", ref)
	}
	return img.ID
}
