package logging

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCaptureSeesEveryLevelWithoutChangingOutput(t *testing.T) {
	var buf bytes.Buffer
	logger, err := New(&buf, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	ctx, c := WithCapture(context.Background(), 3)
	l := logger.With("probe", "wan").WithGroup("ping")
	l.DebugContext(ctx, "resolving", "host", "example.net")
	l.InfoContext(ctx, "burst done", "sent", 10)
	logger.Info("not in the run")
	l.DebugContext(ctx, "third")
	l.DebugContext(ctx, "fourth, past the bound")
	l.DebugContext(ctx, "fifth, past the bound")

	out := buf.String()
	if strings.Contains(out, "resolving") || !strings.Contains(out, "burst done") || !strings.Contains(out, "not in the run") {
		t.Errorf("the logger's own output must still honour its level:\n%s", out)
	}
	lines := c.Lines()
	if len(lines) != 4 {
		t.Fatalf("captured %d lines, want 3 and a note about 2 dropped: %+v", len(lines), lines)
	}
	first := lines[0]
	if first.Level != "DEBUG" || first.Message != "resolving" || len(first.Attrs) != 2 ||
		first.Attrs[0] != (Attr{"probe", "wan"}) || first.Attrs[1] != (Attr{"ping.host", "example.net"}) {
		t.Errorf("first captured line = %+v", first)
	}
	if !strings.Contains(lines[3].Message, "2 more lines not captured") {
		t.Errorf("last line = %+v, want the dropped count", lines[3])
	}
}

func TestRotatingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "netpulse.log")
	w, err := RotatingFile(path, 1, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("file not created at open: %v", err)
	}
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	// 1.5 MiB through a 1 MiB file: one rotation (two rotations within the
	// same millisecond would share a backup name).
	for range 1536 {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "netpulse*.log"))
	if len(files) != 2 {
		t.Errorf("%d files after 1.5 MiB at 1 MiB per file, want the file and one backup: %v", len(files), files)
	}
	if _, err := RotatingFile(filepath.Join(path, "under-a-file.log"), 1, 1, 0); err == nil ||
		!strings.Contains(err.Error(), "log.file") {
		t.Errorf("unwritable path: err = %v, want one naming log.file", err)
	}
}
