package redact

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestURLs(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:pass@host:8080/x":                 "http://user:xxxxx@host:8080/x",
		"https://ghp_TOKEN@example.com/repo":           "https://xxxxx@example.com/repo",
		`Get "http://a:b@h/": dial tcp: refused`:       `Get "http://a:xxxxx@h/": dial tcp: refused`,
		"two: http://u:p@a/ and socks5://v:q@b:1080 .": "two: http://u:xxxxx@a/ and socks5://v:xxxxx@b:1080 .",
		"mail user@example.com, no scheme":             "mail user@example.com, no scheme",
		"http://host/path?q=a@b":                       "http://host/path?q=a@b",
		"http://user:xxxxx@host/":                      "http://user:xxxxx@host/",
		"plain text":                                   "plain text",
	} {
		if got := URLs(in); got != want {
			t.Errorf("URLs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestError(t *testing.T) {
	base := fmt.Errorf("fetch http://u:s3cret@h/: %w", io.EOF)
	err := Error(base)
	if err.Error() != "fetch http://u:xxxxx@h/: EOF" || !errors.Is(err, io.EOF) {
		t.Errorf("Error: %q (is EOF: %v)", err, errors.Is(err, io.EOF))
	}
	if Error(io.EOF) != io.EOF || Error(nil) != nil {
		t.Error("an error with nothing to hide must come back as it is")
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{"Authorization": true, "X-Api-Key": true, "Cookie": true,
		"X-Session-Id": true, "Accept": false, "User-Agent": false} {
		if SecretName(name) != want {
			t.Errorf("SecretName(%q) = %v", name, !want)
		}
	}
}
