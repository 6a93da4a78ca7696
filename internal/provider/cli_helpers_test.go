package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

// The acceptance tests run with Terraform or OpenTofu (`make test`, `make test-opentofu`).
// A test of a configuration feature that not every CLI has calls skipUnlessCLI first, which
// skips it, naming the feature and the versions that have it, when the CLI under test lacks it.

// cliFeature is a configuration feature the provider relies on that older CLIs lack.
type cliFeature struct {
	Name string
	// Terraform and OpenTofu are the first versions with the feature ("" when no release of
	// that CLI has it), from the CLIs' release notes. Which of them the acceptance tests have
	// run with is in the README's compatibility table.
	Terraform string
	OpenTofu  string
}

var (
	featureImportForEach = cliFeature{Name: "import blocks with for_each", Terraform: "1.7.0", OpenTofu: "1.7.0"}
	// OpenTofu 1.7 to 1.9 have removed blocks without a lifecycle block (they always forget);
	// lifecycle { destroy = false } in a removed block needs OpenTofu 1.10.
	featureRemovedBlockDestroyFalse = cliFeature{Name: "removed blocks with lifecycle { destroy = false }",
		Terraform: "1.7.0", OpenTofu: "1.10.0"}
	featureWriteOnly = cliFeature{Name: "write-only attributes", Terraform: "1.11.0", OpenTofu: "1.11.0"}
	featureFunctions = cliFeature{Name: "provider-defined functions", Terraform: "1.8.0", OpenTofu: "1.7.0"}
	// thingspace_esim_profile and thingspace_callback_listener (identity.go); OpenTofu 1.12.6
	// passes their tests.
	featureIdentity = cliFeature{Name: "resource identity (import blocks with identity)", Terraform: "1.12.0", OpenTofu: "1.12.0"}
	// The thingspace_esim_profile list resource (`list` blocks in .tfquery.hcl files, `terraform
	// query`): no OpenTofu release has them.
	featureListResources = cliFeature{Name: "list resources and the query command", Terraform: "1.14.0"}
)

// cliFeatures lists every feature above (TestCLIFeatures checks their versions).
var cliFeatures = []cliFeature{featureImportForEach, featureRemovedBlockDestroyFalse, featureWriteOnly,
	featureFunctions, featureIdentity, featureListResources}

const (
	cliTerraform = "Terraform"
	cliOpenTofu  = "OpenTofu"

	openTofuProviderHost = "registry.opentofu.org"
)

// testCLI is the CLI the acceptance tests run with.
type testCLI struct {
	Name    string // cliTerraform or cliOpenTofu
	Version string // "1.12.6"; empty when unknown
	Path    string // empty when unknown
}

func (c testCLI) String() string {
	s := c.Name
	if c.Version != "" {
		s += " " + c.Version
	}
	if c.Path != "" {
		s += " at " + c.Path
	}
	return s
}

// lacks returns why c does not have f, or "" when it has it. A CLI of unknown version is
// assumed to have every feature its kind has had in some release.
func (c testCLI) lacks(f cliFeature) string {
	first := f.Terraform
	if c.Name == cliOpenTofu {
		first = f.OpenTofu
	}
	var have []string
	if f.Terraform != "" {
		have = append(have, "Terraform "+shortVersion(f.Terraform)+" or later")
	}
	if f.OpenTofu != "" {
		have = append(have, "OpenTofu "+shortVersion(f.OpenTofu)+" or later")
	} else {
		have = append(have, "no OpenTofu release yet")
	}
	switch {
	case first == "":
	case c.Version == "":
		return ""
	case !versionBelow(c.Version, first):
		return ""
	}
	return fmt.Sprintf("needs %s (%s); this is %s", f.Name, strings.Join(have, "; "), c)
}

// skipUnlessCLI skips the test when the CLI under test lacks the feature. Call it first, before
// the test starts a simulator.
func skipUnlessCLI(t *testing.T, f cliFeature) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		return // resource.Test skips the test anyway, and says why
	}
	cli, err := detectCLI()
	if err != nil {
		t.Fatal(err)
	}
	if why := cli.lacks(f); why != "" {
		t.Skip(why)
	}
}

var (
	cliOnce   sync.Once
	cliResult testCLI
	cliErr    error
)

// detectCLI finds the CLI terraform-plugin-testing runs: TF_ACC_TERRAFORM_PATH, else
// `terraform` on PATH, else (TF_ACC_TERRAFORM_VERSION, or the latest release, which it
// downloads) a Terraform. Its kind and version come from `<cli> version`.
func detectCLI() (testCLI, error) {
	cliOnce.Do(func() {
		path := os.Getenv("TF_ACC_TERRAFORM_PATH")
		if path == "" {
			if p, err := exec.LookPath("terraform"); err == nil {
				path = p
			}
		}
		if path == "" {
			cliResult = testCLI{Name: cliTerraform, Version: strings.TrimPrefix(os.Getenv("TF_ACC_TERRAFORM_VERSION"), "v")}
			return
		}
		cliResult, cliErr = runCLIVersion(path)
	})
	return cliResult, cliErr
}

var cliVersionLine = regexp.MustCompile(`(?m)^(Terraform|OpenTofu) v(\d+\.\d+\.\d+\S*)`)

// runCLIVersion runs `<path> version`. The version line need not be the first one: a CLI
// configuration file that does not exist puts a warning before it.
func runCLIVersion(path string) (testCLI, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "version")
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1")
	out, err := cmd.Output()
	if err != nil {
		return testCLI{}, fmt.Errorf("%s version: %v", path, err)
	}
	return parseCLIVersion(path, string(out))
}

func parseCLIVersion(path, out string) (testCLI, error) {
	m := cliVersionLine.FindStringSubmatch(out)
	if m == nil {
		return testCLI{}, fmt.Errorf("%s version printed no line 'Terraform vX.Y.Z' or 'OpenTofu vX.Y.Z':\n%s", path, out)
	}
	return testCLI{Name: m[1], Version: m[2], Path: path}, nil
}

// providerHostProblem says what is wrong when TF_ACC_PROVIDER_HOST does not name the host the
// CLI gives a provider without a source address (terraform-plugin-testing serves the provider
// under that host; any other one makes `init` fail with an unhelpful message), "" otherwise.
func providerHostProblem(cli testCLI, host string) string {
	switch {
	case cli.Name == cliOpenTofu && host != openTofuProviderHost:
		return fmt.Sprintf("the acceptance tests run %s, which resolves providers to %s, but TF_ACC_PROVIDER_HOST=%q: "+
			"set TF_ACC_PROVIDER_HOST=%s (make test-opentofu does)", cli, openTofuProviderHost, host, openTofuProviderHost)
	case cli.Name == cliTerraform && host == openTofuProviderHost:
		return fmt.Sprintf("the acceptance tests run %s, but TF_ACC_PROVIDER_HOST=%s names OpenTofu's registry: unset it, "+
			"or point TF_ACC_TERRAFORM_PATH at an OpenTofu (make test-opentofu does both)", cli, host)
	}
	return ""
}

// TestMain stops at once, saying why, when TF_ACC_TERRAFORM_PATH and TF_ACC_PROVIDER_HOST
// disagree on the CLI; every test that runs the CLI would fail. Started by a CLI as the
// provider plugin (see cliWorkdir), the test binary serves the provider instead.
func TestMain(m *testing.M) {
	if addr := os.Getenv(servePluginEnv); addr != "" {
		if err := providerserver.Serve(context.Background(), New("test"), providerserver.ServeOpts{Address: addr}); err != nil {
			fmt.Fprintln(os.Stderr, "provider plugin:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	for _, attr := range providerEnvAttrs {
		_ = os.Unsetenv(envName(attr))
	}
	if os.Getenv("TF_ACC_TERRAFORM_PATH") != "" {
		cli, err := detectCLI()
		if err != nil {
			fmt.Fprintln(os.Stderr, "internal/provider tests:", err)
			os.Exit(1)
		}
		if p := providerHostProblem(cli, os.Getenv("TF_ACC_PROVIDER_HOST")); p != "" {
			fmt.Fprintln(os.Stderr, "internal/provider tests:", p)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// servePluginEnv, set to the provider's address, makes the test binary serve the provider as a
// plugin process: cliWorkdir's CLI starts it so.
const servePluginEnv = "THINGSPACE_TEST_SERVE_PROVIDER_ADDRESS"

// cliWorkdir is a folder in which the CLI under test runs as a user runs it, outside
// terraform-plugin-testing: it starts the provider itself, as a plugin (this test binary, through
// dev_overrides), so that a test can do what the framework cannot, such as interrupting an apply.
type cliWorkdir struct {
	t   *testing.T
	cli testCLI
	dir string
	env []string
}

// newCLIWorkdir writes config, after a required_providers block with the bare source
// "fleetform/thingspace", into a new folder. It skips the test without TF_ACC, or when no CLI is
// found.
func newCLIWorkdir(t *testing.T, config string) *cliWorkdir {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make test does)")
	}
	cli, err := detectCLI()
	if err != nil {
		t.Fatal(err)
	}
	if cli.Path == "" {
		t.Skip("no CLI to run: set TF_ACC_TERRAFORM_PATH (make test does)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	plugins, work := filepath.Join(root, "plugins"), filepath.Join(root, "work")
	for _, d := range []string{plugins, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(plugins, "terraform-provider-thingspace")); err != nil {
		t.Fatal(err)
	}
	// Each CLI resolves the bare source to its own registry's host; dev_overrides must name it.
	host := "registry.terraform.io"
	if cli.Name == cliOpenTofu {
		host = openTofuProviderHost
	}
	address := host + "/fleetform/thingspace"
	rc := filepath.Join(root, "cli.tfrc")
	rcText := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n", address, plugins)
	if err := os.WriteFile(rc, []byte(rcText), 0o644); err != nil {
		t.Fatal(err)
	}
	w := &cliWorkdir{t: t, cli: cli, dir: work, env: append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc,
		"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0", servePluginEnv+"="+address)}
	w.writeMain(config)
	return w
}

// writeMain replaces the folder's configuration: config after the required_providers block.
func (w *cliWorkdir) writeMain(config string) {
	w.t.Helper()
	main := "terraform {\n  required_providers {\n    thingspace = {\n      source = \"fleetform/thingspace\"\n    }\n  }\n}\n" + config
	if err := os.WriteFile(filepath.Join(w.dir, "main.tf"), []byte(main), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// command is the CLI with args in the folder; its output, stdout and stderr, goes to out.
func (w *cliWorkdir) command(out *syncBuffer, args ...string) *exec.Cmd {
	cmd := exec.Command(w.cli.Path, append([]string{"-chdir=" + w.dir}, args...)...)
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = out, out
	return cmd
}

// run runs the CLI to its end and returns its output and exit code.
func (w *cliWorkdir) run(args ...string) (string, int) {
	w.t.Helper()
	var out syncBuffer
	err := w.command(&out, args...).Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	}
	w.t.Fatalf("%s %s: %v\n%s", w.cli.Name, strings.Join(args, " "), err, out.String())
	return "", -1
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test reading it meanwhile.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// versionBelow reports whether version a is below b (major.minor.patch; a pre-release counts
// as its release, as terraform-plugin-testing's version checks do).
func versionBelow(a, b string) bool {
	pa, pb := versionParts(a), versionParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func versionParts(v string) [3]int {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	var out [3]int
	for i, s := range strings.SplitN(v, ".", 3) {
		out[i], _ = strconv.Atoi(s)
	}
	return out
}

// shortVersion drops a ".0" patch: "1.7.0" is "1.7".
func shortVersion(v string) string {
	return strings.TrimSuffix(v, ".0")
}

// exitStatus is how a process ended, when it ended.
func exitStatus(err error) (syscall.WaitStatus, bool) {
	exit, ok := err.(*exec.ExitError)
	if !ok {
		return 0, false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ws, ok
}
