package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A URL's credentials show neither in the written log nor in a run's
// capture: in the message, a string attribute, an error attribute, a bound
// attribute or a group.
func TestLogsHideURLCredentials(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		logger, err := New(&buf, "debug", format)
		if err != nil {
			t.Fatal(err)
		}
		ctx, c := WithCapture(context.Background(), 10)
		l := logger.With("server", "http://tok-s3cret@10.0.0.1:8080")
		l.WarnContext(ctx, "get http://u:pw-s3cret@h/ failed", "url", "https://u:pw-s3cret@h/x",
			"error", fmt.Errorf("wrapped: %w", errors.New(`Get "http://u:pw-s3cret@h/": EOF`)))
		l.WithGroup("g").InfoContext(ctx, "grouped", "url", "http://u:pw-s3cret@h/")
		captured := fmt.Sprintf("%+v", c.Lines())
		for what, text := range map[string]string{format + " output": buf.String(), "capture": captured} {
			if strings.Contains(text, "s3cret") {
				t.Errorf("%s shows a credential:\n%s", what, text)
			}
			if !strings.Contains(text, "u:xxxxx@h") || !strings.Contains(text, "xxxxx@10.0.0.1") {
				t.Errorf("%s lacks the redacted URLs:\n%s", what, text)
			}
		}
	}
}
