package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A token file is read as the one line an operator meant: white space
// around the token is dropped (kept, it locked out every client), white
// space inside it is refused, as api.token does.
func TestResolveTokenWhiteSpace(t *testing.T) {
	for name, c := range map[string]struct{ content, token, err string }{
		"trailing newline":   {"s3cret\n", "s3cret", ""},
		"CRLF":               {"s3cret\r\n", "s3cret", ""},
		"surrounding spaces": {"  s3cret \t\n", "s3cret", ""},
		"leading blank line": {"\ns3cret\n", "s3cret", ""},
		"space inside":       {"s3 cret\n", "", "must not contain white space"},
		"two lines":          {"s3cret\nother\n", "", "must not contain white space"},
		"only white space":   {" \n\t\n", "", "is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(file, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			tok, err := (API{TokenFile: file}).ResolveToken()
			if c.err == "" {
				if err != nil || tok != c.token {
					t.Fatalf("token %q, %v; want %q", tok, err, c.token)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "api.token_file") ||
				!strings.Contains(err.Error(), file) {
				t.Fatalf("token %q, error %v; want an api.token_file error naming %s: %s", tok, err, file, c.err)
			}
		})
	}
}
