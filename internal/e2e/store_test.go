package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-serve/kiln"
)

// flipInFile flips one byte inside every copy of marker in the file, as a
// bad disk would: the record's value and its copy in the store's event log.
// It returns marker as it now reads.
func flipInFile(t *testing.T, path, marker string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for off := 0; ; n++ {
		i := bytes.Index(data[off:], []byte(marker))
		if i < 0 {
			break
		}
		data[off+i+len(marker)-3] ^= 0x01
		off += i + len(marker)
	}
	if n == 0 {
		t.Fatalf("%q is not in %s", marker, path)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b := []byte(marker)
	b[len(b)-3] ^= 0x01
	return string(b)
}

// storeCLI runs `kiln store ARGS...` and returns its stdout, stderr and
// exit status.
func storeCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(kilnBin, append([]string{"store"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errOut.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), 0
}

// createModels makes the models victim and sound on a running Kiln and
// stops it; it returns the victim's ARN, which is in its record.
func createModels(t *testing.T, p *kilnProc) string {
	t.Helper()
	var arn string
	for _, name := range []string{"victim", "sound"} {
		m, err := p.client.CreateModel(t.Context(), &kiln.Model{ModelName: name, PrimaryContainer: &kiln.ContainerDef{Image: kilnBin + " demo-model"}})
		if err != nil {
			t.Fatal(err)
		}
		if name == "victim" {
			arn = m.ModelArn
		}
	}
	p.stop()
	return arn
}

// A record damaged on disk is not served: Kiln starts, says which record is
// damaged, lists the others, and refuses that one.
func TestCorruptRecordNotServed(t *testing.T) {
	dir := t.TempDir()
	arn := createModels(t, startKiln(t, dir))
	damaged := flipInFile(t, filepath.Join(dir, "kiln.db"), arn)

	p := startKiln(t, dir)
	resp, err := http.Get(p.url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/models: %d %s", resp.StatusCode, body)
	}
	var models []kiln.Model
	if err := json.Unmarshal(body, &models); err != nil {
		t.Fatal(err)
	}
	if len(models) != 1 || models[0].ModelName != "sound" {
		t.Errorf("GET /v1/models = %s; want the sound model alone", body)
	}
	if bytes.Contains(body, []byte(damaged)) {
		t.Errorf("GET /v1/models served the damaged value %q", damaged)
	}

	resp, err = http.Get(p.url + "/v1/models/victim")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 || bytes.Contains(body, []byte(damaged)) {
		t.Errorf("GET /v1/models/victim = %d %s; want an error, not the damaged record", resp.StatusCode, body)
	}

	// SageMaker's ListModels does not serve it either.
	req, _ := http.NewRequest("POST", p.url+"/", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || bytes.Contains(body, []byte(damaged)) || !bytes.Contains(body, []byte(`"sound"`)) {
		t.Errorf("ListModels = %d %s; want the sound model alone", resp.StatusCode, body)
	}

	if logs := p.logs.String(); !strings.Contains(logs, "models/victim") || !strings.Contains(logs, "record is corrupt") {
		t.Errorf("kiln did not log the damaged record:\n%s", tail(logs, 4000))
	}

	// The API deletes it, and the name is free again.
	if err := p.client.DeleteModel(t.Context(), "victim"); err != nil {
		t.Errorf("DeleteModel of the damaged record: %v", err)
	}
	createModelsNamed(t, p, "victim")
}

// `kiln store` inspects and repairs the store of a stopped Kiln: it refuses
// while Kiln runs, lists records with their checksum status, prints a
// damaged one flagged as such, and deletes it, after which Kiln starts with
// the key free again.
func TestStoreCommand(t *testing.T) {
	dir := t.TempDir()
	p := startKiln(t, dir)
	if _, errOut, code := storeCLI(t, "list", "--data-dir", dir); code == 0 || !strings.Contains(errOut, "in use") {
		t.Errorf("kiln store list while kiln runs: exit %d, %q; want a refusal saying the store is in use", code, errOut)
	}
	arn := createModels(t, p)

	out, errOut, code := storeCLI(t, "list", "--data-dir", dir, "models/")
	if code != 0 || !regexpMatch(`models/sound\s+\d+\s+\d+\s+\d+\s+ok`, out) || !regexpMatch(`models/victim\s+\d+\s+\d+\s+\d+\s+ok`, out) {
		t.Fatalf("kiln store list = %d %q %q", code, out, errOut)
	}

	damaged := flipInFile(t, filepath.Join(dir, "kiln.db"), arn)
	out, errOut, code = storeCLI(t, "list", "--data-dir", dir)
	if code != 0 || !regexpMatch(`models/victim\s+\d+\s+\d+\s+\d+\s+damaged`, out) || !regexpMatch(`models/sound\s+\d+\s+\d+\s+\d+\s+ok`, out) ||
		!strings.Contains(errOut, "1 damaged record") {
		t.Errorf("kiln store list of a damaged store = %d\n%s%s", code, out, errOut)
	}
	out, _, code = storeCLI(t, "list", "--data-dir", dir, "-o", "json", "models/victim")
	var rows []struct{ Key, Checksum, Error string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 0 || len(rows) != 1 || rows[0].Checksum != "damaged" || !strings.Contains(rows[0].Error, "checksum") {
		t.Errorf("kiln store list -o json = %d %s (%v)", code, out, err)
	}

	out, errOut, code = storeCLI(t, "get", "--data-dir", dir, "models/victim")
	if code != 3 || !strings.Contains(out, damaged) || !strings.Contains(errOut, "DAMAGED") || !strings.Contains(errOut, "models/victim") {
		t.Errorf("kiln store get of the damaged record = %d %q %q; want its value flagged, exit 3", code, out, errOut)
	}
	out, errOut, code = storeCLI(t, "get", "--data-dir", dir, "models/sound")
	if code != 0 || !strings.Contains(out, `"ModelName":"sound"`) || errOut != "" {
		t.Errorf("kiln store get of a sound record = %d %q %q", code, out, errOut)
	}
	if _, errOut, code := storeCLI(t, "get", "--data-dir", dir, "models/nothing"); code == 0 || !strings.Contains(errOut, `no record "models/nothing"`) {
		t.Errorf("kiln store get of a missing key = %d %q", code, errOut)
	}

	out, errOut, code = storeCLI(t, "delete", "--data-dir", dir, "models/victim")
	if code != 0 || !strings.Contains(out, "deleted models/victim") {
		t.Fatalf("kiln store delete = %d %q %q", code, out, errOut)
	}
	out, _, _ = storeCLI(t, "list", "--data-dir", dir)
	if strings.Contains(out, "models/victim") || strings.Contains(out, "damaged") {
		t.Errorf("after delete, kiln store list =\n%s", out)
	}

	p = startKiln(t, dir)
	if _, err := p.client.CreateModel(t.Context(), &kiln.Model{ModelName: "victim", PrimaryContainer: &kiln.ContainerDef{Image: kilnBin + " demo-model"}}); err != nil {
		t.Errorf("CreateModel after the repair: %v", err)
	}
	if m, err := p.client.GetModel(t.Context(), "sound"); err != nil || m.ModelArn == "" {
		t.Errorf("GetModel(sound) after the repair = %+v, %v", m, err)
	}

	// A data dir without a store is not one to create.
	empty := t.TempDir()
	if _, errOut, code := storeCLI(t, "list", "--data-dir", empty); code == 0 || !strings.Contains(errOut, "no Kiln store") {
		t.Errorf("kiln store list of an empty dir = %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(empty, "kiln.db")); err == nil {
		t.Errorf("kiln store list created a store")
	}
}

// An empty kiln.db is refused by kiln serve: not taken for a new store.
func TestServeRefusesEmptyStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kiln.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A Kiln that took the file for a new store would run until killed.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBin, "serve", "--addr", freeAddr(t), "--data-dir", dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "empty") || !strings.Contains(string(out), "kiln.db") {
		t.Errorf("kiln serve on an empty kiln.db: %v\n%s", err, out)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
