package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Report is one run of the command: results/<timestamp>.json and latest.json.
type Report struct {
	Started     time.Time   `json:"started"`
	Finished    time.Time   `json:"finished"`
	Terraform   string      `json:"terraform"`
	Platform    string      `json:"platform"`
	CPUs        int         `json:"cpus"`
	Args        []string    `json:"args"`
	Interrupted bool        `json:"interrupted,omitempty"`
	Scenarios   []*Scenario `json:"scenarios"`
}

// Scenario is one scenario (one run of profiles per -profiles-runs entry).
type Scenario struct {
	Name          string    `json:"name"`
	Variant       string    `json:"variant,omitempty"`
	Title         string    `json:"title"`
	Devices       int       `json:"devices"`
	Account       int       `json:"accountDevices,omitempty"`
	Parallelism   int       `json:"parallelism"`
	CallbackDelay string    `json:"callbackDelay"`
	Faults        string    `json:"faults,omitempty"`
	Floor         FloorInfo `json:"floor"`
	Steps         []*Step   `json:"steps"`
	// Checks are verdicts about the whole scenario rather than one command.
	Checks  []Target `json:"checks,omitempty"`
	Error   string   `json:"error,omitempty"`
	Seconds float64  `json:"seconds"`
}

// FloorInfo says how the floor was measured: with Instances terraform_data, scaled linearly to
// the scenario's size when Scaled.
type FloorInfo struct {
	Instances int  `json:"instances"`
	Scaled    bool `json:"scaled"`
}

// Step is one measured Terraform command.
type Step struct {
	Name    string  `json:"name"`
	Kind    string  `json:"floorKind,omitempty"` // the floor it is compared with
	Command string  `json:"command"`
	Exit    int     `json:"exitCode"`
	Wall    float64 `json:"wallSeconds"`
	// Floor is the median of FloorSamples (seconds), scaled to the scenario's size.
	Floor        *float64  `json:"floorSeconds,omitempty"`
	FloorSamples []float64 `json:"floorSamples,omitempty"`
	// The provider processes Terraform started for this command: CPU seconds (user and
	// system, summed), the largest peak RSS among them, and how many there were.
	ProviderCPU       float64  `json:"providerCpuSeconds"`
	ProviderRSSMB     float64  `json:"providerPeakRssMB"`
	ProviderProcesses int      `json:"providerProcesses"`
	Requests          Requests `json:"requests"`
	RequestsPerDevice float64  `json:"requestsPerDevice"`
	MeanBatch         float64  `json:"meanBatch"`
	Targets           []Target `json:"targets,omitempty"`
	// Failed: the command failed unexpectedly (or was stopped); its targets are not evaluated.
	Failed     bool     `json:"failed,omitempty"`
	ErrorLines []string `json:"errorLines,omitempty"`
}

// Target is a target and whether it was met.
type Target struct {
	Text   string   `json:"target"`
	Pass   bool     `json:"pass"`
	Got    string   `json:"got"`
	Detail []string `json:"detail,omitempty"`
}

func (sc *Scenario) label() string {
	if sc.Variant != "" {
		return sc.Name + " " + sc.Variant
	}
	return sc.Name
}

// failed reports whether a scenario failed (an unexpected Terraform failure, or the harness).
func (r *Report) failed() bool {
	for _, sc := range r.Scenarios {
		if sc.Error != "" {
			return true
		}
	}
	return false
}

// markdown renders the report: a table per scenario.
func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# make bench, %s\n\n", r.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%s, %s, %d CPUs; flags: `%s`; %.0f s in all.", r.Terraform, r.Platform, r.CPUs, strings.Join(r.Args, " "), r.Finished.Sub(r.Started).Seconds())
	if r.Interrupted {
		b.WriteString(" **Interrupted**: the results are partial.")
	}
	b.WriteString(" The floor is the same command over `terraform_data` with the same `for_each` over the same device map: what Terraform itself costs for that many instances.\n")
	for _, sc := range r.Scenarios {
		sc.markdown(&b)
	}
	return b.String()
}

func (sc *Scenario) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## %s: %s\n\n", sc.label(), sc.Title)
	b.WriteString("| step | wall (s) | floor (s) | wall/floor | (wall − floor)/device (ms) | provider CPU (s) | provider peak RSS (MB) | ThingSpace requests by kind | requests/device | mean batch | target | result |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|---|--:|--:|---|---|\n")
	for _, st := range sc.Steps {
		floor, ratio, extra := "—", "—", "—"
		if st.Floor != nil {
			floor = fmt.Sprintf("%.1f", *st.Floor)
			if *st.Floor > 0 {
				ratio = fmt.Sprintf("%.2f", st.Wall / *st.Floor)
			}
			extra = fmt.Sprintf("%.1f", (st.Wall-*st.Floor)*1000/float64(sc.Devices))
		}
		batch := "—"
		if st.MeanBatch > 0 {
			batch = fmt.Sprintf("%.1f", st.MeanBatch)
		}
		name := st.Name
		if st.Exit != 0 {
			name += fmt.Sprintf(" (exit %d)", st.Exit)
		}
		var texts, results []string
		for _, t := range st.Targets {
			texts = append(texts, t.Text)
			results = append(results, t.verdict())
		}
		if st.Failed {
			results = []string{"not evaluated: the command failed"}
		}
		fmt.Fprintf(b, "| %s | %.1f | %s | %s | %s | %.1f | %.0f | %s | %.3f | %s | %s | %s |\n", name, st.Wall, floor, ratio, extra,
			st.ProviderCPU, st.ProviderRSSMB, st.Requests, st.RequestsPerDevice, batch, orDash(strings.Join(texts, "; ")), orDash(strings.Join(results, "; ")))
	}
	b.WriteString("\n")
	switch {
	case sc.Floor.Instances == 0:
	case sc.Floor.Scaled:
		fmt.Fprintf(b, "Floor: the median of %s of %d `terraform_data`, **scaled linearly** to %d (-floor-max); Terraform's own cost grows faster than linearly with instances, so the real floor is higher.\n", floorRuns(sc), sc.Floor.Instances, sc.Devices)
	default:
		fmt.Fprintf(b, "Floor: the median of %s of %d `terraform_data`.\n", floorRuns(sc), sc.Floor.Instances)
	}
	for _, c := range sc.Checks {
		fmt.Fprintf(b, "\nCheck: %s: %s\n", c.Text, c.verdict())
		for _, d := range c.Detail {
			fmt.Fprintf(b, "- %s\n", d)
		}
	}
	for _, st := range sc.Steps {
		for _, t := range st.Targets {
			if len(t.Detail) > 0 {
				fmt.Fprintf(b, "\n%s, %s:\n", st.Name, t.Text)
				for _, d := range t.Detail {
					fmt.Fprintf(b, "- %s\n", d)
				}
			}
		}
		if len(st.ErrorLines) > 0 {
			fmt.Fprintf(b, "\n%s (exit %d), first lines of its error:\n\n```text\n%s\n```\n", st.Name, st.Exit, strings.Join(st.ErrorLines, "\n"))
		}
	}
	if sc.Error != "" {
		fmt.Fprintf(b, "\n**FAILED**:\n\n```text\n%s\n```\n", sc.Error)
	}
}

// floorRuns says how many floor repetitions the steps' floors come from: "3 runs".
func floorRuns(sc *Scenario) string {
	n := 0
	for _, st := range sc.Steps {
		n = max(n, len(st.FloorSamples))
	}
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}

func (t Target) verdict() string {
	v := "miss"
	if t.Pass {
		v = "pass"
	}
	if t.Got != "" {
		v += " (" + t.Got + ")"
	}
	return v
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// write writes the report as <timestamp>.md/.json and latest.md/.json into dir.
func (r *Report) write(dir, md string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	js = append(js, '\n')
	stamp := r.Started.Format("20060102T150405Z")
	var files []string
	for _, base := range []string{stamp, "latest"} {
		for _, f := range []struct {
			ext  string
			data []byte
		}{{".md", []byte(md)}, {".json", js}} {
			name := filepath.Join(dir, base+f.ext)
			if err := os.WriteFile(name, f.data, 0o644); err != nil {
				return files, err
			}
			files = append(files, name)
		}
	}
	return files, nil
}
