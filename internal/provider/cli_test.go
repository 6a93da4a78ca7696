package provider

// Tests of the CLI detection in cli_helpers_test.go.

import (
	"regexp"
	"strings"
	"testing"
)

func TestCLIFeatures(t *testing.T) {
	for _, f := range cliFeatures {
		for _, v := range []string{f.Terraform, f.OpenTofu} {
			if v != "" && !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
				t.Errorf("%s: version %q is not X.Y.Z", f.Name, v)
			}
		}
		if f.Terraform == "" {
			t.Errorf("%s: no Terraform version", f.Name)
		}
	}
}

func TestCLILacks(t *testing.T) {
	tf := func(v string) testCLI { return testCLI{Name: cliTerraform, Version: v, Path: "/x/terraform"} }
	tofu := func(v string) testCLI { return testCLI{Name: cliOpenTofu, Version: v, Path: "/x/tofu"} }
	cases := []struct {
		cli  testCLI
		f    cliFeature
		want string // "" when the CLI has the feature, else a regexp of the reason
	}{
		{tf("1.5.7"), featureImportForEach, `^needs import blocks with for_each \(Terraform 1\.7 or later; OpenTofu 1\.7 or later\); this is Terraform 1\.5\.7 at /x/terraform$`},
		{tf("1.7.0"), featureImportForEach, ""},
		{tf("1.11.0-rc1"), featureWriteOnly, ""},
		{tf("1.10.5"), featureWriteOnly, `needs write-only attributes .*this is Terraform 1\.10\.5`},
		{tofu("1.12.6"), featureWriteOnly, ""},
		{tofu("1.10.2"), featureWriteOnly, `needs write-only attributes \(Terraform 1\.11 or later; OpenTofu 1\.11 or later\); this is OpenTofu 1\.10\.2`},
		{tofu("1.9.1"), featureRemovedBlockDestroyFalse, `OpenTofu 1\.10 or later`},
		{tf("1.9.1"), featureRemovedBlockDestroyFalse, ""},
		{tofu("1.7.0"), featureFunctions, ""},
		{tf("1.7.5"), featureFunctions, `Terraform 1\.8 or later`},
		{tofu("1.12.6"), featureIdentity, ""},
		{tf("1.11.4"), featureIdentity, `Terraform 1\.12 or later`},
		{tf("1.15.9"), featureListResources, ""},
		{tofu("1.12.6"), featureListResources, `needs list resources and the query command \(Terraform 1\.14 or later; no OpenTofu release yet\); this is OpenTofu 1\.12\.6`},
		{testCLI{Name: cliOpenTofu}, featureListResources, `no OpenTofu release yet`},
		{testCLI{Name: cliTerraform}, featureListResources, ""},
	}
	for _, c := range cases {
		got := c.cli.lacks(c.f)
		if c.want == "" && got != "" || c.want != "" && !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("%s lacks %q = %q, want %q", c.cli, c.f.Name, got, c.want)
		}
	}
}

func TestParseCLIVersion(t *testing.T) {
	cases := []struct{ out, name, version string }{
		{"Terraform v1.11.4\non linux_amd64\n", cliTerraform, "1.11.4"},
		{"\nWarning: Unable to open CLI configuration file\n\nThe CLI configuration file at \"/root/.terraformrc\" does not exist.\nOpenTofu v1.12.6\non linux_amd64\n",
			cliOpenTofu, "1.12.6"},
		{"Terraform v1.15.0-rc2\non darwin_arm64\n", cliTerraform, "1.15.0-rc2"},
	}
	for _, c := range cases {
		got, err := parseCLIVersion("/x/cli", c.out)
		if err != nil || got.Name != c.name || got.Version != c.version {
			t.Errorf("parseCLIVersion(%q) = %+v, %v; want %s %s", c.out, got, err, c.name, c.version)
		}
	}
	if _, err := parseCLIVersion("/x/cli", "something else v1.0.0\n"); err == nil {
		t.Error("parseCLIVersion accepted output without a version line")
	}
}

func TestProviderHostProblem(t *testing.T) {
	tofu := testCLI{Name: cliOpenTofu, Version: "1.12.6"}
	tf := testCLI{Name: cliTerraform, Version: "1.11.4"}
	if p := providerHostProblem(tofu, ""); !strings.Contains(p, "set TF_ACC_PROVIDER_HOST=registry.opentofu.org") {
		t.Errorf("OpenTofu without a host: %q", p)
	}
	if p := providerHostProblem(tofu, "registry.terraform.io"); p == "" {
		t.Error("OpenTofu with registry.terraform.io: no problem reported")
	}
	if p := providerHostProblem(tf, openTofuProviderHost); !strings.Contains(p, "unset it") {
		t.Errorf("Terraform with OpenTofu's host: %q", p)
	}
	for _, ok := range []struct {
		cli  testCLI
		host string
	}{{tofu, openTofuProviderHost}, {tf, ""}, {tf, "registry.terraform.io"}} {
		if p := providerHostProblem(ok.cli, ok.host); p != "" {
			t.Errorf("%s with host %q: %q", ok.cli, ok.host, p)
		}
	}
}
