package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type point struct{ X, Y int }

// Each kind of value a caller may pass, as each format writes it.
func TestAttributesInBothFormats(t *testing.T) {
	var nilErr *os.PathError
	log := func(format string) string {
		var buf bytes.Buffer
		logger, err := New(&buf, "info", format)
		if err != nil {
			t.Fatal(err)
		}
		logger.Info("m", "values", map[string]float64{"b": 2, "a": 0.5}, "took", 1500*time.Millisecond,
			"error", nil, "typed", error(nilErr), "cause", errors.New("boom"), "hosts", []string{"a", "b"},
			"at", point{1, 2}, "none", map[string]int{}, "ports", map[int]string{53: "dns"})
		return buf.String()
	}
	text := log("text")
	for _, want := range []string{"values.a=0.5 values.b=2", "took=1.5s", `cause=boom`, `hosts="[\"a\",\"b\"]"`,
		`at="{\"X\":1,\"Y\":2}"`, `ports="{\"53\":\"dns\"}"`} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %s: %s", want, text)
		}
	}
	for _, bad := range []string{"map[", "<nil>", "error=", "typed=", "none"} {
		if strings.Contains(text, bad) {
			t.Errorf("text has %s: %s", bad, text)
		}
	}

	var rec map[string]any
	if err := json.Unmarshal([]byte(log("json")), &rec); err != nil {
		t.Fatal(err)
	}
	if v, ok := rec["values"].(map[string]any); !ok || v["a"] != 0.5 || v["b"] != 2.0 {
		t.Errorf("values = %v, want an object", rec["values"])
	}
	if rec["took"] != 1.5 {
		t.Errorf("took = %v, want 1.5 (seconds)", rec["took"])
	}
	for _, k := range []string{"error", "typed", "none"} {
		if _, has := rec[k]; has {
			t.Errorf("%s = %v: a nil or empty value is left out", k, rec[k])
		}
	}
	if rec["cause"] != "boom" {
		t.Errorf("cause = %v", rec["cause"])
	}
}

// A run's captured lines (its debug view) get the same treatment.
func TestCaptureNormalizes(t *testing.T) {
	logger, err := New(&bytes.Buffer{}, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	ctx, c := WithCapture(t.Context(), 10)
	logger.InfoContext(ctx, "m", "values", map[string]float64{"a": 1}, "error", nil)
	lines := c.Lines()
	if len(lines) != 1 || len(lines[0].Attrs) != 1 || lines[0].Attrs[0].Key != "values.a" || lines[0].Attrs[0].Value != "1" {
		t.Errorf("captured %+v, want one attribute values.a=1", lines)
	}
}
